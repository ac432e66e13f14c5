#!/usr/bin/env bash
# Supervisor and trial-end overhead, side by side in one run from one build:
#  (a) start+exit of a supervisor around /bin/true: bare /bin/true, knob-supervise, `knob __supervise`
#      (hyperfine, no shell);
#  (b) `knob run` of 100 no-op trials (/bin/echo loss=...), parallel 1 (or --parallel P), random: wall time
#      per trial with the serving knob-supervise (the default), with a knob-supervise per trial
#      (KNOB_SUPERVISOR=each) and with `knob __supervise` per trial (KNOB_SUPERVISOR=builtin); and, when
#      BASELINE_KNOB names a knob binary built from an earlier commit, with that one.
#
#   bench/supervisor.sh [--config debug|release] [--trials N] [--parallel P] [--repeat R]
#   BASELINE_KNOB=/path/to/old/knob bench/supervisor.sh
#
# Needs hyperfine (Debian: apt-get install -y hyperfine). Builds knob and knob-supervise in the chosen
# configuration (debug by default: a release build takes ~12 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
config=debug trials=100 parallel=1 repeat=3
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "usage: bench/supervisor.sh [--config debug|release] [--trials N] [--parallel P] [--repeat R]" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 1; }

echo "building knob and knob-supervise ($config)" >&2
swift build -c "$config" --product knob >&2
swift build -c "$config" --product knob-supervise >&2
bin=".build/$config"
knob="$PWD/$bin/knob" small="$PWD/$bin/knob-supervise"
work=$(mktemp -d "${TMPDIR:-/tmp}/knob-bench-supervisor.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1); $config build"
echo
echo "## (a) supervisor start+exit around /bin/true"
echo
hyperfine -N --warmup 20 --runs 300 --style basic --export-json "$work/a.json" \
  -n "bare /bin/true" "/bin/true" \
  -n "knob-supervise" "$small --status $work/s1 -- /bin/true" \
  -n "knob __supervise" "$knob __supervise --status $work/s2 -- /bin/true" >/dev/null 2>"$work/hyperfine.err" \
  || { cat "$work/hyperfine.err" >&2; exit 1; }
python3 - "$work/a.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
print("| command | median | min | mean ± σ | runs |")
print("|---|---|---|---|---|")
for r in results:
    ms = lambda v: f"{v * 1000:.2f} ms"
    print(f"| {r['command']} | {ms(r['median'])} | {ms(r['min'])} | {r['mean'] * 1000:.2f} ± {r['stddev'] * 1000:.2f} ms | {len(r['times'])} |")
PY

cat > "$work/spec.yaml" <<SPEC
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: noop
spec:
  objective:
    type: minimize
    objectiveMetricName: loss
  algorithm:
    algorithmName: random
  parallelTrialCount: $parallel
  maxTrialCount: $trials
  parameters:
    - name: x
      parameterType: double
      feasibleSpace: {min: "0", max: "1"}
  trialTemplate:
    trialParameters:
      - {name: x, reference: x}
    command: [/bin/echo, "loss=\${trialParameters.x}"]
SPEC

# Runs `knob run` once with $2 as knob and the rest as environment assignments, appending the wall time per trial
# (ns) to the file $1. Each run has a home of its own, removed only at the end: removing homes between runs
# slows the next runs on ext4 (the kernel's scan of recently deleted inodes), whichever build runs next.
one_run() {
  local times="$1" binary="$2"; shift 2
  local home="$work/home-$RANDOM$RANDOM"
  local start end
  start=$(date +%s%N)
  env "$@" "$binary" run -f "$work/spec.yaml" --home "$home" >"$work/output" 2>&1 || { tail -5 "$work/output" >&2; exit 1; }
  end=$(date +%s%N)
  grep -q "succeeded (MaxTrialsReached)" "$work/output" || { echo "unexpected end:" >&2; tail -5 "$work/output" >&2; exit 1; }
  echo "$(( (end - start) / trials ))" >>"$times"
}

# The median of the times in file $1, in ms, and every run in round order.
median_of() {
  local median runs
  median=$(sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1e6 }')
  runs=$(awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 / 1e6 }' "$1")
  echo "$median ms (runs: $runs)"
}

echo
echo "## (b) knob run, $trials no-op trials, parallel $parallel, random: wall time per trial, median of $repeat (the builds in turn in each round)"
echo
for run in $(seq "$repeat"); do
  [ -n "${BASELINE_KNOB:-}" ] && one_run "$work/t-baseline" "$BASELINE_KNOB" KNOB_SUPERVISOR=builtin
  one_run "$work/t-builtin" "$knob" KNOB_SUPERVISOR=builtin
  one_run "$work/t-each" "$knob" KNOB_SUPERVISOR=each
  one_run "$work/t-serve" "$knob"
done
echo "| knob | supervisor | trial end | per trial |"
echo "|---|---|---|---|"
if [ -n "${BASELINE_KNOB:-}" ]; then
  echo "| baseline ($BASELINE_KNOB) | \`knob __supervise\` | scraper's 100 ms sleep | $(median_of "$work/t-baseline") |"
fi
echo "| this build, KNOB_SUPERVISOR=builtin | \`knob __supervise\` per trial | event | $(median_of "$work/t-builtin") |"
echo "| this build, KNOB_SUPERVISOR=each | knob-supervise per trial | event | $(median_of "$work/t-each") |"
echo "| this build | one knob-supervise --serve | event | $(median_of "$work/t-serve") |"
