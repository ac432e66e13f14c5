#!/usr/bin/env bash
# What 4 pending trials cost knob's `tpe` and `multivariate-tpe`, over many seeds: each runs one
# trial at a time and with 4 pending at a time, on the four benchmark functions and the two held
# out of tuning, and bench/compare_pending.py prints the ratio of median regrets at 100 trials with a
# paired bootstrap interval, for all seeds, for the first 40, and for each block of 40.
#
#   bench/run-tpe-pending.sh [--seeds N] [--first-seed S]     (default 600 seeds from 0)
#
# knob only (a few seconds per thousand runs): the target compares each suggester with itself.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=600
first=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --first-seed) first="$2"; shift 2 ;;
    *) echo "usage: bench/run-tpe-pending.sh [--seeds N] [--first-seed S]" >&2; exit 2 ;;
  esac
done
functions=branin2,hartmann6,rosenbrock5,ackley10,styblinski5,levy6
. bench/common.sh
build_bench
files=()
for algorithm in tpe multivariate-tpe; do
  echo "knob $algorithm: sequential and 4 pending, $seeds seeds from $first" >&2
  for mode in "0 " "4 -pending"; do
    read -r pending suffix <<< "$mode"
    file="bench/out/knob-$algorithm$suffix-many.json"
    "$bench_binary" --algorithm "$algorithm" --functions "$functions" --seeds "$seeds" --first-seed "$first" --overhead-seeds 0 \
      --pending "$pending" --json > "$file"
    files+=("$file")
  done
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores; $(swift --version 2>/dev/null | head -1); seeds $first–$((first + seeds - 1))"
echo
python3 bench/compare_pending.py --block 40 "${files[@]}"
