#!/usr/bin/env bash
# OTLP/gRPC exports of 512 records against native AppendBatch of 512, 8
# clients each, rounds interleaved (docs/benchmarks.md):
#   scripts/bench/otlp.sh CAIRN ROUNDS
B=$1; ROUNDS=$2
run() { local name=$1; shift; local d; d=$(mktemp -d)
  "$B" serve --data-dir "$d/data" --grpc-addr 127.0.0.1:7791 --http-addr 127.0.0.1:7792 >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 1 100); do "$B" checkpoint --server http://127.0.0.1:7791 >/dev/null 2>&1 && break; sleep 0.1; done
  "$B" bench --server http://127.0.0.1:7791 --pii-density 3 --server-pid $pid --out "$d/r.json" "$@" >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null
  python3 -c "
import json; r=json.load(open('$d/r.json'))
print(f\"$name {r['achieved_per_s']:.0f}/s srv {r['server_cpu_us_per_op']:.2f} us/op cli {r['client_cpu_us_per_op']:.2f} p50 {r['latency_ms']['p50']:.1f} p99 {r['latency_ms']['p99']:.1f} ms err {r['errors']}\")"
  rm -rf "$d"; }
for i in $(seq 1 "$ROUNDS"); do
  run otlp512 --clients 8 --rate 0 --count 400000 --otlp 512
  run batch512-index --clients 8 --rate 0 --count 400000 --batch 512 --receipts index
done
