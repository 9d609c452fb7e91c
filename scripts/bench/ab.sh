#!/usr/bin/env bash
# A/B of one `cairn bench` load, interleaved (docs/benchmarks.md):
#   scripts/bench/ab.sh OLD_CAIRN NEW_CAIRN ROUNDS [bench args...]
# e.g. ... 5 --clients 4 --count 300000 --stream
# Each run: a fresh folder, OLD's or NEW's `cairn serve`, NEW's client.
OLD=$1; NEW=$2; ROUNDS=$3; shift 3; ARGS=("$@")
run() { local bin=$1 name=$2 d; d=$(mktemp -d)
  "$bin" serve --data-dir "$d/data" --grpc-addr 127.0.0.1:7751 --http-addr 127.0.0.1:7752 >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 1 100); do "$NEW" checkpoint --server http://127.0.0.1:7751 >/dev/null 2>&1 && break; sleep 0.1; done
  "$NEW" bench --server http://127.0.0.1:7751 --rate 0 --pii-density 3 --server-pid $pid --out "$d/r.json" "${ARGS[@]}" >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null
  python3 -c "
import json; r=json.load(open('$d/r.json'))
print(f\"$name {r['achieved_per_s']:.0f}/s srv {r['server_cpu_us_per_op']:.2f} us/op p99 {r['latency_ms']['p99']:.0f} ms err {r['errors']}\")"
  rm -rf "$d"; }
for i in $(seq 1 "$ROUNDS"); do run "$OLD" old; run "$NEW" new; done
