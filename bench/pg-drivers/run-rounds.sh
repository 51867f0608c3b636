#!/usr/bin/env bash
# Runs the benchmark in rounds, each driver in its own process and the drivers in a
# rotating order, and prints for each case the line of the round with the median
# throughput: on a shared 2-core machine one run alone says more about the
# neighbours than about the driver.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-3}
cargo build -q --release
bin="${CARGO_TARGET_DIR:-target}/release/pg-drivers"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
drivers=(postgres tokio-postgres sqlx)
for ((round = 0; round < rounds; round++)); do
  for ((i = 0; i < ${#drivers[@]}; i++)); do
    driver=${drivers[(i + round) % ${#drivers[@]}]}
    "$bin" "$driver" 2>/dev/null | grep '^| [a-z]' | grep -v '^| driver' >> "$out"
  done
done
python3 - "$out" <<'PY'
import sys, collections
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    runs.setdefault((cells[0], cells[1]), []).append(cells)
print("| driver | case | rows or reads/s | latency | client CPU per row or read |")
print("| --- | --- | ---: | --- | ---: |")
order = {"postgres (sync)": 0, "tokio-postgres": 1, "sqlx (postgres)": 2}
for key in sorted(runs, key=lambda k: order.get(k[0], 9)):
    lines = sorted(runs[key], key=lambda c: float(c[2]))
    median = lines[len(lines) // 2]
    print("| " + " | ".join(median) + " |")
PY
