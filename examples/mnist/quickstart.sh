#!/usr/bin/env bash
# Sets up a fresh Debian machine with Swift, builds knob, and tunes the MNIST trainer with it.
# The store is $KNOB_HOME (default ~/.knob).
set -euo pipefail
cd "$(dirname "$0")/../.."

.ci/install-deps
echo "building knob (the first build takes a few minutes)"
swift build --product knob
knob=.build/debug/knob

# --replace: running the quick start again starts the example from scratch.
"$knob" run -f examples/mnist/experiment.yaml --replace
echo
echo "the best parameters, as a pipeline would ask for them:"
"$knob" best mnist -o json
