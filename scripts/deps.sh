#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine with only Rust,
# when it is missing. Sourced by scripts/run.sh and scripts/test.sh.
#
# The build needs libclang (RocksDB's bindgen); the tests need the tools
# listed below (with CAIRN_TEST_DEPS=1, as scripts/test.sh sets).
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

# The etcd client (leadership for logs in a bucket) compiles etcd's
# protobuf definitions at build time: it needs protoc (Debian's
# protobuf-compiler), or PROTOC naming one.
if [ -z "${PROTOC:-}" ] && ! command -v protoc >/dev/null 2>&1; then
    echo "==> installing protobuf-compiler for the etcd client's build" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler
fi

# Tests only: Go and golang.org/x/mod (the interoperability test against
# Go's sumdb/note and sumdb/tlog), PyYAML (the deployment-file checks),
# fusermount3 (the power-loss harness mounts a FUSE file system), Node.js
# and npm (the explorer's verifier and pages run under `node --test`),
# Chromium (the explorer's pages are tested in it, headless).
# A failed install is an error under CI (CI=true: the tests that need them
# would fail anyway, and say less); elsewhere a warning, and those tests
# say they did not run.
if [ "${CAIRN_TEST_DEPS:-}" = 1 ]; then
    missing=()
    command -v go >/dev/null 2>&1 || missing+=(golang-go)
    [ -d /usr/share/gocode/src/golang.org/x/mod ] || missing+=(golang-golang-x-mod-dev)
    python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
    command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> installing test tools: ${missing[*]}" >&2
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/cairn-deps.log 2>&1; then
            cat /tmp/cairn-deps.log >&2
            if [ -n "${CI:-}" ] && [ "${CI}" != false ]; then
                echo "error: could not install ${missing[*]} (needed by the tests)" >&2
                exit 1
            fi
            echo "warning: could not install ${missing[*]}; the tests that need them will say they did not run" >&2
        fi
    fi
fi

# Tests only: the OpenTelemetry Python SDK and its OTLP exporters (gRPC,
# HTTP protobuf, HTTP JSON), pinned, in a virtual environment the OTLP
# interoperability test uses (crates/cli/tests/otel_sdk.rs).
if [ "${CAIRN_TEST_DEPS:-}" = 1 ]; then
    venv="${CAIRN_VENV:-$HOME/.cache/cairn-venv}"
    if ! "$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.json.http' >/dev/null 2>&1; then
        echo "==> installing the OpenTelemetry Python SDK into $venv" >&2
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q \
            "opentelemetry-sdk==1.45.1" \
            "opentelemetry-exporter-otlp-proto-grpc==1.45.1" \
            "opentelemetry-exporter-otlp-proto-http==1.45.1" \
            "opentelemetry-exporter-otlp-json-http==0.66b1"; } >/tmp/cairn-pip.log 2>&1; then
            cat /tmp/cairn-pip.log >&2
            if [ -n "${CI:-}" ] && [ "${CI}" != false ]; then
                echo "error: could not install the OpenTelemetry Python SDK (needed by the tests)" >&2
                exit 1
            fi
            echo "warning: could not install the OpenTelemetry Python SDK; the OTLP interoperability test will say it did not run" >&2
        fi
    fi
    export CAIRN_VENV="$venv"
fi
