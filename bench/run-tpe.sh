#!/usr/bin/env bash
# Runs knob's `tpe` and `multivariate-tpe` beside Optuna's TPESampler (its default, which in Optuna 5
# is the multivariate TPE with the constant liar, and `multivariate=False`) and hyperopt's
# `tpe.suggest` (what Katib's `tpe` runs), on the four benchmark functions, same seeds and budget,
# and prints the side-by-side table with a paired bootstrap of each median difference.
#
#   bench/run-tpe.sh [--seeds N] [--wide-seeds M]     (default 10 seeds × 100 trials; M = 40, 0 skips)
#
# knob-bench and bench/reference.py take --first-seed (knob's TPE settings were chosen on seeds 100–139).
#
# Rows: sequential for every sampler; 4 trials pending at a time for knob's two and Optuna's default;
# time per suggestion at 100 and 1000 trials (knob: median of 3 runs; references: 1 run; wall and
# process CPU). The references run in $KNOB_BENCH_PYTHON or bench/.venv (created here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="bench/run-tpe.sh"
. bench/common.sh
parse_seed_args "$@"
prepare_bench "optuna==5.0.0" hyperopt numpy
run_knob() {  # algorithm seeds suffix [extra args]
  local algorithm="$1" n="$2" suffix="$3"; shift 3
  .build/release/knob-bench --algorithm "$algorithm" --functions "$functions" --seeds "$n" "$@" --json > "bench/out/knob-$algorithm$suffix.json"
}
run_reference() {  # samplers seeds suffix [extra args]
  local samplers="$1" n="$2" suffix="$3"; shift 3
  OMP_NUM_THREADS=1 "$python" bench/reference.py --samplers "$samplers" --functions "$functions" --seeds "$n" "$@" 2>/dev/null \
    > "bench/out/tpe-reference$suffix.json"
}
echo "knob tpe and multivariate-tpe: sequential and 4 pending, $seeds seeds; time per suggestion at 100 and 1000 trials" >&2
for algorithm in tpe multivariate-tpe; do
  run_knob "$algorithm" "$seeds" "" --overhead-trials 1000 --overhead-seeds 3
  run_knob "$algorithm" "$seeds" "-pending" --pending 4 --overhead-seeds 0
done
echo "Optuna TPESampler (default, multivariate=False) and hyperopt: sequential, $seeds seeds; 1000-trial timing run" >&2
run_reference optuna_tpe,optuna_tpe_univariate,hyperopt_tpe "$seeds" "" --overhead-trials 1000 --overhead-seeds 1
echo "Optuna TPESampler (default): 4 pending, $seeds seeds" >&2
run_reference optuna_tpe "$seeds" "-pending" --pending 4 --overhead-seeds 0

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1); $("$python" -c 'import optuna, hyperopt, numpy, sys; print(f"Python {sys.version.split()[0]}, optuna {optuna.__version__}, hyperopt {hyperopt.__version__}, numpy {numpy.__version__}")')"
echo
python3 bench/compare_tpe.py bench/out/knob-tpe.json bench/out/knob-tpe-pending.json bench/out/knob-multivariate-tpe.json \
  bench/out/knob-multivariate-tpe-pending.json bench/out/tpe-reference.json bench/out/tpe-reference-pending.json

[ "$wide" -gt 0 ] || exit 0
echo "all samplers sequential, knob's and Optuna's default with 4 pending, $wide seeds (regret only), with the held-out styblinski5 and levy6" >&2
# The wide run adds two functions held out of the four on which knob's TPE settings were chosen.
functions="$functions,styblinski5,levy6"
for algorithm in tpe multivariate-tpe; do
  run_knob "$algorithm" "$wide" "-wide" --overhead-seeds 0
  run_knob "$algorithm" "$wide" "-pending-wide" --pending 4 --overhead-seeds 0
done
run_reference optuna_tpe,optuna_tpe_univariate,hyperopt_tpe "$wide" "-wide" --overhead-seeds 0
run_reference optuna_tpe "$wide" "-pending-wide" --pending 4 --overhead-seeds 0
echo
echo "Seeds 0–$((wide - 1)):"
echo
python3 bench/compare_tpe.py bench/out/knob-tpe-wide.json bench/out/knob-tpe-pending-wide.json bench/out/knob-multivariate-tpe-wide.json \
  bench/out/knob-multivariate-tpe-pending-wide.json bench/out/tpe-reference-wide.json bench/out/tpe-reference-pending-wide.json
