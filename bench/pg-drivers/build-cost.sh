#!/usr/bin/env bash
# What each candidate driver costs to build: a crate holding only that driver (and
# tokio where it needs one), built from scratch in a target folder of its own, debug
# (what every developer pays on a clean checkout) and release. Prints the wall time
# and the number of crates in its normal dependency tree (itself excluded).
set -euo pipefail
work=$(mktemp -d /tmp/pg-build-cost-XXXXXX)
trap 'rm -rf "$work"' EXIT
declare -A deps=(
  [postgres]='postgres = "0.19"'
  [tokio-postgres]='tokio-postgres = "0.7"
tokio = { version = "1", features = ["rt"] }'
  [sqlx]='sqlx = { version = "0.9", default-features = false, features = ["postgres", "runtime-tokio"] }
tokio = { version = "1", features = ["rt"] }'
)
printf '| driver | crates in tree | debug build | release build |\n| --- | ---: | ---: | ---: |\n'
for driver in postgres tokio-postgres sqlx; do
  dir="$work/$driver"
  mkdir -p "$dir/src"
  printf '[package]\nname = "cost"\nversion = "0.0.0"\nedition = "2024"\n\n[workspace]\n\n[dependencies]\n%s\n' "${deps[$driver]}" > "$dir/Cargo.toml"
  echo 'fn main() {}' > "$dir/src/main.rs"
  (cd "$dir" && cargo generate-lockfile -q)
  count=$(cd "$dir" && cargo tree -e normal --prefix none | sed 1d | sort -u | wc -l)
  start=$(date +%s.%N)
  (cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo build -q -j2)
  debug=$(echo "$(date +%s.%N) - $start" | bc)
  start=$(date +%s.%N)
  (cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo build -q -j2 --release)
  release=$(echo "$(date +%s.%N) - $start" | bc)
  printf '| %s | %s | %.0f s | %.0f s |\n' "$driver" "$count" "$debug" "$release"
done
