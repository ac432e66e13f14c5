#!/usr/bin/env bash
# Hyperband against random search on the MNIST trainer (examples/mnist/train.py, Fashion-MNIST),
# given the same total number of epochs: bench/hyperband.py says how. Each seed runs two
# experiments with `knob run` (22 Hyperband trials, 78 epochs; then random search at 9 epochs a
# trial until it has spent as many), about 2 minutes a seed on 2 cores.
#
#   bench/run-hyperband.sh [--seeds N] [--debug]     (default 3 seeds, release build)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=3
configuration=release
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --debug) configuration=debug; shift ;;
    *) echo "usage: bench/run-hyperband.sh [--seeds N] [--debug]" >&2; exit 2 ;;
  esac
done
echo "building knob ($configuration)" >&2
swift build -c "$configuration" --product knob >&2
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); knob $configuration build; $(python3 -c 'import numpy, sys; print(f"Python {sys.version.split()[0]}, numpy {numpy.__version__}")')"
echo
python3 bench/hyperband.py --knob ".build/$configuration/knob" --seeds "$seeds"
