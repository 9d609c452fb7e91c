#!/usr/bin/env bash
# The Dockerfile's build steps, as one script: the image runs it, and CI
# runs it directly (this machine has only the Docker client), so a change
# that breaks the image's build breaks CI too.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
cargo build --release --locked --bin cairn
"${CARGO_TARGET_DIR:-target}/release/cairn" --version
