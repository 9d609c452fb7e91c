#!/usr/bin/env bash
# The test command: installs missing build dependencies, starts the real
# services the tests use (Ceph RGW and etcd on loopback, scripts/services.sh),
# then runs every test in the workspace against the committed Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_TEST_DEPS=1 source scripts/deps.sh

# Ceph RGW (S3) and etcd for the object-storage tests. Stopped again at the
# end if this script started them. Under CI a failure to start is an error;
# elsewhere the tests that need them fail and say what is missing.
services_dir="${CAIRN_SERVICES_DIR:-$HOME/.cache/cairn-services}"
started=""
if ! bash scripts/services.sh running "$services_dir" 2>/dev/null; then
    if bash scripts/services.sh start "$services_dir"; then
        started=1
    elif [ -n "${CI:-}" ] && [ "${CI}" != false ]; then
        echo "error: could not start Ceph RGW and etcd (scripts/services.sh)" >&2
        exit 1
    fi
else
    bash scripts/services.sh start "$services_dir"
fi
if [ -f "$services_dir/env" ]; then
    set -a
    # shellcheck disable=SC1091
    source "$services_dir/env"
    set +a
fi
stop_services() {
    [ -n "$started" ] && bash scripts/services.sh stop "$services_dir" >/dev/null 2>&1 || true
}
trap stop_services EXIT

cargo test --workspace --locked "$@"

# The explorer: its in-page verifier (web/verifier.js) against the shared
# known answers, and its pages in headless Chromium (playwright-core from
# npm, pinned in web/package-lock.json; no browser download) against the
# `cairn` binary the tests above built.
echo "==> npm ci (web/: playwright-core)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)
export CAIRN_BIN="${CAIRN_BIN:-${CARGO_TARGET_DIR:-target}/debug/cairn}"
echo "==> node --test web/test/"
node --test web/test/
