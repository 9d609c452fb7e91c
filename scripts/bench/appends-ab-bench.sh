#!/usr/bin/env bash
# Single log, previous build vs this one, interleaved (docs/benchmarks.md):
#   scripts/bench/appends-ab-bench.sh OLD_CAIRN NEW_CAIRN [ROUNDS] [COUNT]
# `cairn bench` (the new build's client) with 4 AppendStreams, closed loop,
# COUNT events of ~250 bytes with 3 PII values; server CPU via --server-pid.
set -u
OLD=$1; NEW=$2; ROUNDS=${3:-6}; COUNT=${4:-200000}
run() {
  local bin=$1 name=$2 d; d=$(mktemp -d)
  "$bin" serve --data-dir "$d/data" --grpc-addr 127.0.0.1:7731 --http-addr 127.0.0.1:7732 >/dev/null 2>"$d/err" &
  local pid=$!
  for _ in $(seq 1 100); do "$NEW" checkpoint --server http://127.0.0.1:7731 >/dev/null 2>&1 && break; sleep 0.1; done
  "$NEW" bench --server http://127.0.0.1:7731 --stream --clients 4 --rate 0 --count "$COUNT" --pii-density 3 --server-pid $pid --out "$d/r.json" >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null
  python3 -c "
import json; r=json.load(open('$d/r.json'))
print(f\"$name {r['achieved_per_s']:.0f} appends/s, errors {r['errors']}, server CPU {r['server_cpu_s']/r['ok']*1e6:.1f} us/append\")"
  rm -rf "$d"
}
for i in $(seq 1 "$ROUNDS"); do run "$OLD" old; run "$NEW" new; done
