#!/usr/bin/env bash
# Runs knob's Bayesian optimization (`gp`) and Optuna's GPSampler on the four benchmark functions,
# same seeds and budget, and prints the side-by-side table with the verdict of each target.
#
#   bench/run-gp.sh [--seeds N] [--wide-seeds M]     (default 10 seeds × 100 trials; M = 40)
#
# Rows: sequential (one trial at a time) for both; 4 trials pending at a time for knob on every
# function and for GPSampler on hartmann6; time per suggestion at 100 trials (median of 3 runs, wall
# and process CPU) for both and at 500 trials for knob. GPSampler runs in $KNOB_BENCH_PYTHON, or in
# bench/.venv (created here if missing), with greenlet so its batched L-BFGS-B is not run
# sequentially. Raw rows go to bench/out/.
#
# Then the same regret comparison on M seeds (0 skips it): knob sequential and 4 pending on every
# function, GPSampler on hartmann6, whose runs split between the global minimum and a local one,
# so that 10 seeds say more about which seeds were drawn than about the samplers.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="bench/run-gp.sh"
. bench/common.sh
parse_seed_args "$@"
prepare_bench "optuna==5.0.0" torch scipy greenlet numpy
echo "knob gp: sequential, $seeds seeds; time per suggestion at 100 and 500 trials" >&2
.build/release/knob-bench --algorithm gp --functions "$functions" --seeds "$seeds" \
  --overhead-trials 500 --overhead-seeds 3 --json > bench/out/knob-gp.json
echo "knob gp: 4 pending, $seeds seeds" >&2
.build/release/knob-bench --algorithm gp --functions "$functions" --seeds "$seeds" --pending 4 \
  --overhead-seeds 0 --json > bench/out/knob-gp-pending.json
echo "Optuna GPSampler: sequential, $seeds seeds; time per suggestion at 100 trials" >&2
OMP_NUM_THREADS=1 "$python" bench/reference.py --samplers optuna_gp --functions "$functions" \
  --seeds "$seeds" --overhead-trials 100 --overhead-seeds 3 2>/dev/null > bench/out/optuna-gp.json
echo "Optuna GPSampler: 4 pending on hartmann6, $seeds seeds" >&2
OMP_NUM_THREADS=1 "$python" bench/reference.py --samplers optuna_gp --functions hartmann6 \
  --seeds "$seeds" --pending 4 --overhead-seeds 0 2>/dev/null > bench/out/optuna-gp-pending.json

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1); $("$python" -c 'import optuna, torch, scipy, sys; print(f"Python {sys.version.split()[0]}, optuna {optuna.__version__}, torch {torch.__version__}, scipy {scipy.__version__}")')"
echo
python3 bench/compare_gp.py bench/out/knob-gp.json bench/out/knob-gp-pending.json bench/out/optuna-gp.json bench/out/optuna-gp-pending.json

[ "$wide" -gt 0 ] || exit 0
echo "knob gp: sequential and 4 pending, $wide seeds" >&2
.build/release/knob-bench --algorithm gp --functions "$functions" --seeds "$wide" --overhead-seeds 0 --json > bench/out/knob-gp-wide.json
.build/release/knob-bench --algorithm gp --functions "$functions" --seeds "$wide" --pending 4 --overhead-seeds 0 \
  --json > bench/out/knob-gp-pending-wide.json
echo "Optuna GPSampler: sequential on hartmann6, $wide seeds" >&2
OMP_NUM_THREADS=1 "$python" bench/reference.py --samplers optuna_gp --functions hartmann6 --seeds "$wide" \
  --overhead-seeds 0 2>/dev/null > bench/out/optuna-gp-wide.json
echo
echo "Seeds 0–$((wide - 1)):"
echo
python3 bench/compare_gp.py bench/out/knob-gp-wide.json bench/out/knob-gp-pending-wide.json bench/out/optuna-gp-wide.json
