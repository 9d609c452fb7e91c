#!/usr/bin/env bash
# Durable appends with the log in a bucket (Ceph RGW on this machine, from
# scripts/services.sh) against RocksDB on the local disk, interleaved
# (docs/benchmarks.md):
#   scripts/bench/bucket-vs-rocks.sh CAIRN ROUNDS [bench args...]
# e.g. ... 5 --stream --clients 4 --rate 0 --count 300000 (closed loop)
#   or ... 3 --stream --clients 4 --rate 22000 --duration 10 (open loop)
# Each run: a fresh data folder (and, for the bucket, a fresh prefix in
# $CAIRN_S3_BUCKET). Prints appends/s, Cairn's CPU per append, and the CPU
# the Ceph daemons (radosgw, ceph-osd, ceph-mon) spent per append.
set -euo pipefail
BIN=$1; ROUNDS=$2; shift 2; ARGS=("$@")
DIR=${CAIRN_SERVICES_DIR:-$HOME/.cache/cairn-services}
set -a; source "$DIR/env"; set +a
ceph_ticks() {  # utime+stime of the Ceph daemons, in clock ticks
  local t=0 p
  for p in $(pgrep -x radosgw) $(pgrep -x ceph-osd) $(pgrep -x ceph-mon); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
run() { local mode=$1 d store=(); d=$(mktemp -d)
  [ "$mode" = bucket ] && store=(--store "s3://$CAIRN_S3_BUCKET/bench/$(date +%s%N)")
  "$BIN" serve --data-dir "$d/data" "${store[@]}" --grpc-addr 127.0.0.1:7751 --http-addr 127.0.0.1:7752 >/dev/null 2>&1 & local pid=$!
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 100); do "$BIN" checkpoint --server http://127.0.0.1:7751 >/dev/null 2>&1 && break; sleep 0.1; done
  local c0; c0=$(ceph_ticks)
  "$BIN" bench --server http://127.0.0.1:7751 --pii-density 3 --server-pid $pid --out "$d/r.json" "${ARGS[@]}" >/dev/null 2>&1
  local c1; c1=$(ceph_ticks)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  python3 -c "
import json, os; r=json.load(open('$d/r.json')); hz=os.sysconf('SC_CLK_TCK')
ceph=($c1-$c0)/hz/max(r['ok'],1)*1e6
print(f\"$mode {r['achieved_per_s']:.0f}/s cairn {r['server_cpu_us_per_op']:.2f} us/op ceph {ceph:.2f} us/op p50 {r['latency_ms']['p50']:.0f} ms p99 {r['latency_ms']['p99']:.0f} ms err {r['errors']}\")"
  rm -rf "$d"; }
for _ in $(seq 1 "$ROUNDS"); do run rocks; run bucket; done
