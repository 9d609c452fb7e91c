#!/usr/bin/env bash
# The run command: starts the log on its embedded defaults (RocksDB in
# ./cairn-data, a key generated there on first start, gRPC on
# 127.0.0.1:7400, C2SP tlog-tiles on http://127.0.0.1:7480). Extra
# arguments go to `cairn serve` (see `cairn serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
exec cargo run --release --locked --bin cairn -- serve "$@"
