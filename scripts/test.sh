#!/usr/bin/env bash
# The test command: installs missing build dependencies, then runs every
# test in the workspace against the committed Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_TEST_DEPS=1 source scripts/deps.sh
exec cargo test --workspace --locked "$@"
