#!/usr/bin/env bash
# Receipt forms and batches, closed loop, rounds interleaved across modes
# (docs/benchmarks.md):  scripts/bench/receipt-modes.sh CAIRN ROUNDS
B=$1; ROUNDS=$2
run() { local name=$1; shift; local d; d=$(mktemp -d)
  "$B" serve --data-dir "$d/data" --grpc-addr 127.0.0.1:7761 --http-addr 127.0.0.1:7762 >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 1 100); do "$B" checkpoint --server http://127.0.0.1:7761 >/dev/null 2>&1 && break; sleep 0.1; done
  "$B" bench --server http://127.0.0.1:7761 --pii-density 3 --server-pid $pid --out "$d/r.json" "$@" >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null
  python3 -c "
import json; r=json.load(open('$d/r.json'))
print(f\"$name {r['achieved_per_s']:.0f}/s srv {r['server_cpu_us_per_op']:.2f} us/op p50 {r['latency_ms']['p50']:.1f} p99 {r['latency_ms']['p99']:.1f} p999 {r['latency_ms']['p999']:.1f} ms err {r['errors']}\")"
  rm -rf "$d"; }
for i in $(seq 1 "$ROUNDS"); do
  run stream-proof --clients 4 --rate 0 --count 300000 --stream --receipts proof
  run stream-index --clients 4 --rate 0 --count 300000 --stream --receipts index
  run batch256-proof --clients 4 --rate 0 --count 400000 --batch 256 --receipts proof
  run batch1000-index --clients 4 --rate 0 --count 400000 --batch 1000 --receipts index
  run batch1000-proof --clients 4 --rate 0 --count 400000 --batch 1000 --receipts proof
done
