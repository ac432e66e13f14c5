#!/bin/sh
# The dashboard's costs beside their bars (bench/dashboard.py), with release builds of knob and knobd.
#   bench/dashboard.sh [--trials N] [--window S] [--loads N] [--pages N] [--store DIR]
set -e
cd "$(dirname "$0")/.."
swift build -c release --product knobd >&2
swift build -c release --product knob >&2
python="${KNOB_BENCH_PYTHON:-.venv/bin/python}"
KNOB_BIN=.build/release exec "$python" bench/dashboard.py "$@"
