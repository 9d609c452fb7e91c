#!/usr/bin/env bash
#   scripts/bench/many-logs.sh CAIRN [ROUNDS] [COUNT]   (docs/benchmarks.md)
# Aggregate durable appends/s over 4 logs vs 1 log, same build, same client
# load (4 AppendStreams, closed loop, 200,000 events of ~250 bytes with 3 PII
# values each), interleaved; server CPU from /proc via --server-pid.
set -u
BIN=$1; ROUNDS=${2:-5}; COUNT=${3:-200000}
cfg() { # $1 dir, $2.. names
  local d=$1; shift
  printf 'grpc_addr = "127.0.0.1:7721"\nhttp_addr = "127.0.0.1:7722"\n' > "$d/cairn.toml"
  for n in "$@"; do
    printf '\n[[log]]\nname = "%s"\norigin = "bench.example/%s"\ndata_dir = "%s/%s"\n' "$n" "$n" "$d" "$n" >> "$d/cairn.toml"
  done
}
run() { # $1 label, $2 logs csv
  local d; d=$(mktemp -d)
  cfg "$d" ${2//,/ }
  "$BIN" serve --config "$d/cairn.toml" >/dev/null 2>"$d/err" &
  local pid=$!
  for _ in $(seq 1 100); do "$BIN" checkpoint --server http://127.0.0.1:7721 >/dev/null 2>&1 && break; sleep 0.1; done
  "$BIN" bench --server http://127.0.0.1:7721 --stream --clients 4 --rate 0 --count "$COUNT" --pii-density 3 --logs "$2" --server-pid $pid --out "$d/r.json" >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null
  python3 -c "
import json; r=json.load(open('$d/r.json'))
print(f\"$1 {r['achieved_per_s']:.0f} appends/s, errors {r['errors']}, server CPU {r['server_cpu_s']/r['ok']*1e6:.1f} us/append, p99 {r['latency_ms']['p99']:.1f} ms\")"
  rm -rf "$d"
}
for i in $(seq 1 "$ROUNDS"); do
  run one a
  run four a,b,c,d
done
