#!/usr/bin/env bash
# The fuzz campaign: every cargo-fuzz target for a fixed time on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the -Z flags it needs).
#
#   bash scripts/fuzz.sh                 # every target, 600 s each, 2 at a time
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh note tlog_proof
#
# Seed corpora live in fuzz/corpus/<target> (committed); what libFuzzer
# finds goes to $FUZZ_WORK/<target> (default /tmp/cairn-fuzz). Crashes land in fuzz/artifacts/<target>;
# each one becomes a regression test. The summary (executions, coverage,
# crashes) goes to fuzz/campaign.log and into docs/testing.md by hand.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
SECONDS_EACH="${FUZZ_SECONDS:-600}"
PARALLEL="${FUZZ_PARALLEL:-2}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
# A prebuilt RocksDB (ROCKSDB_LIB_DIR + ROCKSDB_STATIC=1) saves its
# 15-minute C++ build for the append_request target; optional.
TARGET_DIR="${FUZZ_TARGET_DIR:-target}"
echo "==> building ${#TARGETS[@]} targets"
cargo fuzz build -O --target-dir "$TARGET_DIR"
run() {
    local t=$1
    local work="${FUZZ_WORK:-/tmp/cairn-fuzz}/$t"
    mkdir -p "corpus/$t" "artifacts/$t" "$work"
    local log="/tmp/cairn-fuzz-$t.log" started=$SECONDS
    # New inputs go to $work; the committed seeds in corpus/$t are read only.
    cargo fuzz run -O --target-dir "$TARGET_DIR" "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=4096 \
        >"$log" 2>&1 && status=ok || status=FAILED
    local execs cov
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '#[0-9]+.*cov:' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
    # Ended at (UTC), target, seconds run of those asked, executions,
    # coverage, crash files.
    printf '%s\t%s\t%ss of %ss\texecs=%s\tcov=%s\tcrashes=%s\n' "$(date -u +%FT%TZ)" "$t" \
        "$((SECONDS - started))" "$SECONDS_EACH" "${execs:-?}" "${cov:-?}" \
        "$(ls "artifacts/$t" | wc -l)" | tee -a campaign.log
    [ "$status" = ok ] || { echo "$t: see $log"; tail -30 "$log"; }
}
i=0
for t in "${TARGETS[@]}"; do
    run "$t" &
    i=$((i + 1))
    if [ $((i % PARALLEL)) -eq 0 ]; then wait; fi
done
wait
echo "==> done: fuzz/campaign.log"
