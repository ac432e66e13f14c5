#!/usr/bin/env bash
# Runs examples/mnist/experiment-earlystop.yaml (24 random trials of 8 epochs, 2 at a time) with no
# early stopping, with medianstop and with successivehalving, on the same seeds, and prints per run
# the best accuracy, the epochs trained, the trials' CPU seconds and wall seconds, then the means per rule with
# their ratios to the runs without early stopping.
#
#   bench/run-earlystop.sh [--seeds N] [--medianstop "name=value ..."] [--successivehalving "name=value ..."] [--modes none,medianstop,...]
#
# The same seed gives the same 24 assignments in each mode (random search does not depend on the
# results), so the rules differ only in which trials they cut short. Uses the debug build of knob:
# the trials' training is what is measured, not the engine.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product knob >&2
python3 bench/earlystop.py --knob .build/debug/knob --spec examples/mnist/experiment-earlystop.yaml "$@"
