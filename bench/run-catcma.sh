#!/usr/bin/env bash
# Runs knob's `cmaes` (CatCMA with margin on a space with categoricals) beside the `cmaes`
# library's CatCMAwM on the mixed function `mixed6` (log-scaled double, double, int, categoricals of
# 3, 5 and 4 choices), same seeds and budget (100 trials, one at a time), and prints the
# side-by-side table with a paired bootstrap of the median difference. knob's `random` is a row too.
#
#   bench/run-catcma.sh [--seeds N] [--wide-seeds M] [--held-out H]
#
# Seeds 0..N−1 (default 10) and 0..M−1 (default 40), then H seeds from 100 on (default 400; 0
# skips), which also show in how many disjoint sets of 40 and of 10 of them knob's median is ≤ the
# library's: how much a verdict on one set of seeds is seed noise.
# KNOB_BENCH_CONFIG=debug uses a debug build of knob-bench (the same regrets: only time differs,
# and this benchmark does not time). The library runs in $KNOB_BENCH_PYTHON or bench/.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="bench/run-catcma.sh [--seeds N] [--wide-seeds M] [--held-out H]"
seeds=10 wide=40 held=400
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --wide-seeds) wide="$2"; shift 2 ;;
    --held-out) held="$2"; shift 2 ;;
    *) echo "usage: $usage" >&2; exit 2 ;;
  esac
done
. bench/common.sh
prepare_bench "cmaes==0.13.1" numpy
run() {  # seeds first-seed name
  echo "knob cmaes and random, the cmaes library's CatCMAwM: mixed6, $1 seeds from $2" >&2
  for algorithm in cmaes random; do
    "$bench_binary" --algorithm "$algorithm" --functions mixed6 --seeds "$1" --first-seed "$2" --overhead-seeds 0 --json \
      > "bench/out/knob-$algorithm-mixed6-$3.json"
  done
  OMP_NUM_THREADS=1 "$python" bench/catcma.py --seeds "$1" --first-seed "$2" > "bench/out/catcma-reference-$3.json"
}
compare() {  # name [--sets]
  python3 bench/compare_catcma.py bench/out/knob-cmaes-mixed6-$1.json bench/out/knob-random-mixed6-$1.json \
    bench/out/catcma-reference-$1.json "${@:2}"
}
[ "$seeds" -gt 0 ] && run "$seeds" 0 seeds
[ "$wide" -gt 0 ] && run "$wide" 0 wide
[ "$held" -gt 0 ] && run "$held" 100 held

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores; knob-bench ${KNOB_BENCH_CONFIG:-release}; $(swift --version 2>/dev/null | head -1); $("$python" -c 'import cmaes, numpy, sys; print(f"Python {sys.version.split()[0]}, cmaes {cmaes.__version__}, numpy {numpy.__version__}")')"
if [ "$seeds" -gt 0 ]; then echo; echo "Seeds 0–$((seeds - 1)):"; echo; compare seeds; fi
if [ "$wide" -gt 0 ]; then echo; echo "Seeds 0–$((wide - 1)):"; echo; compare wide; fi
if [ "$held" -gt 0 ]; then echo; echo "Seeds 100–$((held + 99)):"; echo; compare held --sets; fi
