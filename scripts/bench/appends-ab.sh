#!/usr/bin/env bash
# Interleaved A/B of durable appends (docs/benchmarks.md):
#   scripts/bench/appends-ab.sh OLD_CAIRN NEW_CAIRN [ROUNDS] [EVENTS]
# For each round, each server build on a fresh folder, the same client (the
# new build) appending EVENTS (NDJSON, 100,000 lines: the shared corpus's
# events repeated, see below) over one AppendStream; wall time and the
# server's CPU time from /proc.
#   python3 -c "import json,sys; ev=[json.dumps(json.loads(l)['event'])+'\n' for l in open('../shared/corpus/pii-labeled.ndjson')]; sys.stdout.writelines(ev*20)" > /tmp/ev100k.ndjson
set -u
OLD=$1; NEW=$2; CLIENT=$2; ROUNDS=${3:-5}; EVENTS=${4:-/tmp/ev100k.ndjson}
tick=$(getconf CLK_TCK)
run() {
  local bin=$1 name=$2
  local d; d=$(mktemp -d)
  "$bin" serve --data-dir "$d/data" --grpc-addr 127.0.0.1:7711 --http-addr 127.0.0.1:7712 >/dev/null 2>"$d/err" &
  local pid=$!
  for _ in $(seq 1 100); do "$CLIENT" checkpoint --server http://127.0.0.1:7711 >/dev/null 2>&1 && break; sleep 0.1; done
  local c0; c0=$(awk '{print $14+$15}' /proc/$pid/stat)
  local t0; t0=$(date +%s.%N)
  "$CLIENT" append --server http://127.0.0.1:7711 "$EVENTS" > /dev/null
  local t1; t1=$(date +%s.%N)
  local c1; c1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid 2>/dev/null
  rm -rf "$d"
  python3 -c "w=$t1-$t0; cpu=($c1-$c0)/$tick; print(f'$name wall {w:.2f} s, {100000/w:.0f} appends/s, server CPU {cpu:.2f} s / 100k ({cpu*10:.1f} us/append)')"
}
for i in $(seq 1 "$ROUNDS"); do
  run "$OLD" old
  run "$NEW" new
done
