#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine with only Rust,
# when it is missing. Sourced by scripts/run.sh and scripts/test.sh.
#
# Today cairn-core needs nothing beyond Rust. When the RocksDB storage crate
# lands, bindgen needs libclang: this script installs it then.
set -euo pipefail

need_libclang() {
    # Only needed once a crate in the workspace depends on rocksdb.
    grep -q '^rocksdb' Cargo.toml 2>/dev/null || return 1
    # libclang-cpp is not enough: bindgen loads libclang.so / libclang-N.so.
    ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so' && return 1
    ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-*.so* >/dev/null 2>&1 && return 1
    return 0
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 2
fi

if need_libclang; then
    echo "==> installing libclang for RocksDB's bindgen" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends libclang1-14 libclang-common-14-dev
fi

# Tests only: Go and golang.org/x/mod, for the interoperability test against
# Go's sumdb/note and sumdb/tlog. Best effort: without them that one test
# reports that it was skipped.
if [ "${CAIRN_TEST_DEPS:-}" = 1 ] && { ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod ]; }; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Go and golang.org/x/mod for the interop test" >&2
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev; } >/dev/null 2>&1 \
            || echo "warning: could not install Go; the Go interop test will be skipped" >&2
    fi
fi
