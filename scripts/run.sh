#!/usr/bin/env bash
# The run command. Until the server lands, it runs the core demo: builds a
# log in memory, signs a checkpoint, issues and verifies a tlog-proof receipt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
exec cargo run --release --locked --example demo -- "$@"
