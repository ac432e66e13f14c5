#!/usr/bin/env bash
# Runs knob's CMA-ES and the reference samplers (the `cmaes` library, Optuna's CmaEsSampler) on
# the same functions, seeds and budgets, and prints the side-by-side table.
#
#   bench/run.sh [--seeds N]          (default 10 seeds × 100 trials; overhead at 100 and 1000 trials,
#                                      and the first suggestion after a restart at 1000 trials, with
#                                      CMA-ES's replay checkpoint kept and with nothing kept)
#
# The reference samplers run in a virtualenv this script creates (bench/.venv). Raw rows go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=10
[ "${1:-}" = "--seeds" ] && seeds="$2"

echo "building knob-bench (release)" >&2
swift build -c release --product knob-bench >&2
if [ ! -x bench/.venv/bin/python ]; then
  echo "creating bench/.venv with cmaes and optuna" >&2
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install -q "cmaes==0.13.1" "optuna==5.0.0" numpy >&2

mkdir -p bench/out
echo "running knob (cmaes), $seeds seeds" >&2
.build/release/knob-bench --algorithm cmaes --seeds "$seeds" --overhead-seeds 3 --json > bench/out/knob-cmaes.json
echo "running the cmaes library and Optuna's CmaEsSampler, $seeds seeds" >&2
bench/.venv/bin/python bench/reference.py --seeds "$seeds" --overhead-seeds 1 > bench/out/reference.json

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores; $(swift --version 2>/dev/null | head -1); $(bench/.venv/bin/python -c 'import cmaes, optuna, numpy, sys; print(f"Python {sys.version.split()[0]}, cmaes {cmaes.__version__}, optuna {optuna.__version__}, numpy {numpy.__version__}")')"
echo
python3 bench/compare.py bench/out/knob-cmaes.json bench/out/reference.json
