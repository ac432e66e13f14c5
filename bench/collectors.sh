#!/usr/bin/env bash
# The collectors' reading speed, side by side in one run: a 100 MB TEXT metrics file (Katib-style
# "Epoch N. accuracy=… - loss=…" lines) and the TensorBoard event file holding the same reports (written
# by tensorboardX, one event per step), each read by knob (`knob collect file`, `knob collect tfevents`:
# the collectors' own code, reports printed to /dev/null) and by a Python baseline (re with Katib's
# default filter; tensorboardX's protobuf classes over the records, without checking CRCs).
#
#   bench/collectors.sh [--config debug|release] [--megabytes N]
#
# The data is written once into bench/out/collectors-N (a few minutes: tensorboardX writes ~20k events/s).
# Python comes from $KNOB_BENCH_PYTHON, else .venv (it needs tensorboardX).
set -euo pipefail
cd "$(dirname "$0")/.."
config=debug megabytes=100
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --megabytes) megabytes="$2"; shift 2 ;;
    *) echo "usage: bench/collectors.sh [--config debug|release] [--megabytes N]" >&2; exit 2 ;;
  esac
done
python="${KNOB_BENCH_PYTHON:-.venv/bin/python}"
"$python" -c 'import tensorboardX' 2>/dev/null || { echo "error: $python cannot import tensorboardX (run .ci/install-deps, or set KNOB_BENCH_PYTHON)" >&2; exit 1; }

echo "building knob ($config)" >&2
swift build -c "$config" --product knob >&2
knob=".build/$config/knob"

data="bench/out/collectors-$megabytes"
if [ ! -s "$data/reports" ]; then
  echo "writing $megabytes MB of metrics and the same reports as TensorBoard events into $data" >&2
  rm -rf "$data" && mkdir -p "$data"
  "$python" bench/collectors.py generate "$data" --megabytes "$megabytes" > "$data/reports.tmp"
  mv "$data/reports.tmp" "$data/reports"
fi
reports=$(cat "$data/reports")
text_bytes=$(stat -c %s "$data/metrics.txt")
event_bytes=$(find "$data/tb" -name '*tfevents*' -printf '%s\n' | awk '{s += $1} END {print s}')

# Runs a reader three times; prints the median wall seconds. Its report count must be the generator's.
measure() {
  local label="$1"; shift
  local times=() count
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    count=$("$@" | tail -n 1)
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | sed -n 2p > "$data/time"
  echo "$count" > "$data/count"
}
row() {  # label bytes
  local seconds count
  seconds=$(cat "$data/time"); count=$(cat "$data/count")
  [ "$count" = "$reports" ] || { echo "error: $1 read $count reports, not $reports" >&2; exit 1; }
  printf '| %s | %.1f MB | %.2f s | %.1f MB/s | %s reports/s |\n' "$1" "$(echo "$2 / 1000000" | bc -l)" "$seconds" \
    "$(echo "$2 / 1000000 / $seconds" | bc -l)" "$(printf '%.0f' "$(echo "$reports / $seconds" | bc -l)")"
}
knob_text() { "$knob" collect file "$data/metrics.txt" --metric accuracy --metric loss | wc -l; }
knob_events() { "$knob" collect tfevents "$data/tb" --metric accuracy --metric loss | wc -l; }

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1); knob $config build; $("$python" --version)"
echo "$reports reports; median of 3 runs, wall time"
echo
echo "| reader | file | time | throughput | reports/s |"
echo "|---|---|---|---|---|"
measure "knob collect file" knob_text; row "knob collect file (TEXT, Katib's default format)" "$text_bytes"
measure "python re" "$python" bench/collectors.py python-text "$data/metrics.txt"; row "Python re, Katib's default filter (baseline)" "$text_bytes"
measure "knob collect tfevents" knob_events; row "knob collect tfevents (CRC checked)" "$event_bytes"
measure "python events" "$python" bench/collectors.py python-events "$data/tb"; row "Python, tensorboardX protobuf, no CRC (baseline)" "$event_bytes"
