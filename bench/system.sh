#!/usr/bin/env bash
# The engine's own cost, each figure beside a baseline measured in the same run, with the bar it is
# held to:
#  1. no-op trials (/bin/echo loss=…, random) at parallel 1: `knob run` per trial vs bare spawns vs
#     Optuna's study.optimize with subprocess.run, in memory;
#  2. 1,000 no-op trials at parallel 8: `knob run` vs `xargs -P8` vs Optuna (n_jobs=8), in memory;
#  3. 10,000 no-op trials at parallel 8: cost per trial of the last 1,000 vs the first 1,000 (from
#     the trials' times in the store); the same with bayesianoptimization at 2,000 trials, and the
#     suggestion's share estimated from what random costs per trial;
#  4. one trial printing 200k lines of 2 metrics: reports stored per second vs Python `re` with
#     Katib's default filter, and the scraper and the store apart on that log (knob-bench reports); one
#     trial printing 1M lines, 1 in 100 a metric: MB/s vs `cat`;
#  5. knobd over TCP with wrk (16 connections): /healthz vs /optimal, /v1/experiments and
#     /trials?limit=100 on the 10,000-trial experiment of row 3; knobd's RSS idle and after; then
#     knobd on a home of 100 finished experiments of 1,000 trials (row 2's, copied in SQL): RSS
#     and /v1/experiments.
#
#   bench/system.sh [--quick] [--bin DIR] [--keep] [--long-trials N] [--api-only]
#
# --quick: 3,000 trials in row 3 (500 with bayesianoptimization), 50k/250k lines in row 4, 3 s per wrk run; --long-trials N sets
# row 3's count alone (its windows are the first and last tenth, at most 1,000 trials each).
# --api-only: rows 5 and 5b alone (rows 2's and 3's experiments are run for their homes, unmeasured).
# --bin: where knob, knobd, knob-supervise and knob-bench are (default .build/release, built if missing).
# Needs wrk and hyperfine (Debian: apt-get install -y wrk hyperfine) and bench/.venv with optuna
# (created when missing, or $KNOB_BENCH_PYTHON). Everything runs in a temporary home, removed at
# the end (unless --keep); ~/.knob is never used.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 bin=.build/release keep=0 long_override= api_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --bin) bin="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --long-trials) long_override="$2"; shift 2 ;;
    --api-only) api_only=1; shift ;;
    *) echo "usage: bench/system.sh [--quick] [--bin DIR] [--keep] [--long-trials N] [--api-only]" >&2; exit 2 ;;
  esac
done
for tool in wrk sqlite3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y wrk sqlite3" >&2; exit 1; }
done
if [ ! -x "$bin/knob" ] || [ ! -x "$bin/knobd" ] || [ ! -x "$bin/knob-supervise" ] || [ ! -x "$bin/knob-bench" ]; then
  echo "building knob, knobd, knob-supervise and knob-bench (release)" >&2
  swift build -c release >&2
fi
bin=$(cd "$bin" && pwd)
knob="$bin/knob" knobd="$bin/knobd"
python="${KNOB_BENCH_PYTHON:-bench/.venv/bin/python}"
if [ ! -x "$python" ]; then
  echo "creating bench/.venv with optuna" >&2
  python3 -m venv bench/.venv
fi
"$python" -c "import optuna" 2>/dev/null || "$python" -m pip install -q optuna >&2
helper="$PWD/bench/system.py"

if [ "$quick" = 1 ]; then
  p1_trials=100 p8_trials=1000 long_trials=3000 bo_trials=500 dense_lines=50000 sparse_lines=250000 wrk_seconds=3
else
  p1_trials=100 p8_trials=1000 long_trials=10000 bo_trials=2000 dense_lines=200000 sparse_lines=1000000 wrk_seconds=10
fi
experiments=100
long_trials=${long_override:-$long_trials}
window=$(( long_trials / 10 < 1000 ? long_trials / 10 : 1000 ))

work=$(mktemp -d "${TMPDIR:-/tmp}/knob-bench-system.XXXXXX")
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# Nothing here may fall back to ~/.knob.
export KNOB_HOME="$work/no-home"

now() { date +%s%N; }
# awk arithmetic on its arguments: calc 'a / b' 1 2
calc() { local expr="$1"; shift; awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" "BEGIN { printf \"%.6g\", $expr }"; }
met() { if [ "$(awk "BEGIN { print ($1) ? 1 : 0 }")" = 1 ]; then echo met; else echo "**not met**"; fi; }
ms() { calc 'a * 1000' "$1"; }
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); echo "  $1: knob $2; baseline $3; $4; bar $5: $6" >&2; }

# spec NAME ALGORITHM PARALLEL TRIALS COMMAND-YAML [METRICS-YAML]
spec() {
  cat <<SPEC
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: $1
spec:
  objective:
    type: minimize
    objectiveMetricName: loss
    additionalMetricNames: [${6:-}]
  algorithm:
    algorithmName: $2
  parallelTrialCount: $3
  maxTrialCount: $4
  parameters:
    - name: x
      parameterType: double
      feasibleSpace: {min: "0", max: "1"}
  trialTemplate:
    trialParameters:
      - {name: x, reference: x}
    command: $5
SPEC
}
noop='[/bin/echo, "loss=${trialParameters.x}"]'

# knob_run NAME SPEC-FILE HOME: runs it, prints the wall seconds
knob_run() {
  local start end
  start=$(now)
  "$knob" run -f "$2" --home "$3" >"$work/$1.out" 2>&1 || { tail -5 "$work/$1.out" >&2; exit 1; }
  end=$(now)
  grep -q "succeeded (MaxTrialsReached)" "$work/$1.out" || { echo "$1 ended otherwise:" >&2; tail -5 "$work/$1.out" >&2; exit 1; }
  calc '(b - a) / 1e9' "$start" "$end"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1 || true)" >&2
echo "binaries: $bin; $("$python" -c 'import sys, optuna; print(f"Python {sys.version.split()[0]}, optuna {optuna.__version__}")'); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)" >&2
machine="$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load before the run $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$api_only" = 1 ]; then
  echo "rows 2 and 3 (unmeasured): the homes of rows 5 and 5b" >&2
  spec p8 random 8 "$p8_trials" "$noop" >"$work/p8.yaml"
  knob_run p8 "$work/p8.yaml" "$work/home-p8" >/dev/null
  spec long random 8 "$long_trials" "$noop" >"$work/long.yaml"
  knob_run long "$work/long.yaml" "$work/home-long" >/dev/null
else
# ---- 1. parallel 1
echo "row 1: $p1_trials no-op trials, parallel 1" >&2
spec p1 random 1 "$p1_trials" "$noop" >"$work/p1.yaml"
knob_s=$(knob_run p1 "$work/p1.yaml" "$work/home-p1")
start=$(now)
for i in $(seq "$p1_trials"); do /bin/echo "loss=0.5" >/dev/null; done
bare_s=$(calc '(b - a) / 1e9' "$start" "$(now)")
optuna_s=$("$python" "$helper" optuna "$p1_trials" 1)
knob_pt=$(calc 'a / b * 1000' "$knob_s" "$p1_trials")
bare_pt=$(calc 'a / b * 1000' "$bare_s" "$p1_trials")
optuna_pt=$(calc 'a / b * 1000' "$optuna_s" "$p1_trials")
overhead=$(calc 'a - b' "$knob_pt" "$bare_pt")
row "$p1_trials no-op trials, parallel 1, per trial" "$(printf '%.2f ms' "$knob_pt")" \
  "$(printf 'bare spawn %.2f ms; Optuna in memory %.2f ms' "$bare_pt" "$optuna_pt")" \
  "$(printf 'overhead %.2f ms; %.1f× bare, %.2f× Optuna' "$overhead" "$(calc 'a / b' "$knob_pt" "$bare_pt")" "$(calc 'a / b' "$knob_pt" "$optuna_pt")")" \
  "≤ 5 ms overhead" "$(met "$overhead <= 5")"

# ---- 2. parallel 8
echo "row 2: $p8_trials no-op trials, parallel 8" >&2
spec p8 random 8 "$p8_trials" "$noop" >"$work/p8.yaml"
knob_s=$(knob_run p8 "$work/p8.yaml" "$work/home-p8")
start=$(now)
seq "$p8_trials" | sed 's/^/loss=0./' | xargs -P8 -n1 /bin/echo >/dev/null
bare_s=$(calc '(b - a) / 1e9' "$start" "$(now)")
optuna_s=$("$python" "$helper" optuna "$p8_trials" 8)
ratio=$(calc 'a / b' "$knob_s" "$bare_s")
row "$p8_trials no-op trials, parallel 8, total" "$(printf '%.2f s' "$knob_s")" \
  "$(printf 'xargs -P8 %.2f s; Optuna in memory (n_jobs=8) %.2f s' "$bare_s" "$optuna_s")" \
  "$(printf '%.1f× bare, %.2f× Optuna' "$ratio" "$(calc 'a / b' "$knob_s" "$optuna_s")")" \
  "≤ 3× bare and ≤ Optuna" "$(met "$ratio <= 3 && $knob_s <= $optuna_s")"

# ---- 3. flat cost per trial
echo "row 3: $long_trials no-op trials, parallel 8 (takes a while)" >&2
spec long random 8 "$long_trials" "$noop" >"$work/long.yaml"
long_s=$(knob_run long "$work/long.yaml" "$work/home-long")
IFS=$'\t' read -r n first last first_run last_run < <("$python" "$helper" windows "$work/home-long/knob.db" long "$window")
ratio=$(calc 'b / a' "$first" "$last")
row "$long_trials no-op trials, parallel 8, random: last $window vs first $window" \
  "$(printf 'first %.2f ms, last %.2f ms per trial (%.1f s in all)' "$(ms "$first")" "$(ms "$last")" "$long_s")" \
  "$(printf 'flat: 1.0 (start to end of one trial: first %.2f ms, last %.2f ms)' "$(ms "$first_run")" "$(ms "$last_run")")" \
  "$(printf 'last/first %.2f' "$ratio")" "≤ 1.2" "$(met "$ratio <= 1.2")"

echo "row 3b: $bo_trials no-op trials, parallel 8, bayesianoptimization" >&2
bo_window=$(( bo_trials / 2 < 1000 ? bo_trials / 2 : 1000 ))
spec bo bayesianoptimization 8 "$bo_trials" "$noop" >"$work/bo.yaml"
bo_s=$(knob_run bo "$work/bo.yaml" "$work/home-bo")
IFS=$'\t' read -r n bo_first bo_last _ _ < <("$python" "$helper" windows "$work/home-bo/knob.db" bo "$bo_window")
ratio=$(calc 'b / a' "$bo_first" "$bo_last")
# What random costs per trial (row 3's first window) is the engine; the rest is the suggestion.
share_first=$(calc '(a - b) / a * 100' "$bo_first" "$first")
share_last=$(calc '(a - b) / a * 100' "$bo_last" "$first")
row "$bo_trials no-op trials, parallel 8, bayesianoptimization: last $bo_window vs first $bo_window" \
  "$(printf 'first %.2f ms, last %.2f ms per trial (%.1f s in all)' "$(ms "$bo_first")" "$(ms "$bo_last")" "$bo_s")" \
  "$(printf 'random %.2f ms per trial (row 3): suggestion ≈ %.0f%% of the first window, %.0f%% of the last' "$(ms "$first")" "$share_first" "$share_last")" \
  "$(printf 'last/first %.2f' "$ratio")" "reported with the suggestion's share (a GP's fit grows with its history)" "reported"

# ---- 4. reports
echo "row 4: dense ($dense_lines lines) and sparse ($sparse_lines lines) logs" >&2
"$python" "$helper" dense "$work/dense.log" "$dense_lines"
"$python" "$helper" sparse "$work/sparse.log" "$sparse_lines"
# The trial is cat of the file, through sh -c so that the parameter (which a command must use) is
# an argument nobody reads.
spec dense random 1 1 "[/bin/sh, -c, \"exec /bin/cat $work/dense.log\", \"\${trialParameters.x}\"]" acc >"$work/dense.yaml"
spec sparse random 1 1 "[/bin/sh, -c, \"exec /bin/cat $work/sparse.log\", \"\${trialParameters.x}\"]" >"$work/sparse.yaml"
dense_wall=$(knob_run dense "$work/dense.yaml" "$work/home-dense")
IFS=$'\t' read -r dense_reports dense_s _ < <("$python" "$helper" trial "$work/home-dense/knob.db" dense)
IFS=$'\t' read -r re_reports re_s < <("$python" "$helper" katib-re "$work/dense.log" loss,acc)
[ "$dense_reports" = "$re_reports" ] || echo "warning: knob stored $dense_reports reports, re found $re_reports" >&2
knob_rate=$(calc 'a / b' "$dense_reports" "$dense_s")
re_rate=$(calc 'a / b' "$re_reports" "$re_s")
dense_mb=$(calc 'a / 1e6' "$(stat -c %s "$work/dense.log")")
row "one trial, $dense_lines lines of 2 metrics: reports stored/s" \
  "$(printf '%.0fk/s (%s reports, trial %.2f s, knob run %.2f s)' "$(calc 'a / 1000' "$knob_rate")" "$dense_reports" "$dense_s" "$dense_wall")" \
  "$(printf 'Python re, Katib filter, parsing only: %.0fk/s (%.1f MB/s)' "$(calc 'a / 1000' "$re_rate")" "$(calc 'a / b' "$dense_mb" "$re_s")")" \
  "$(printf '%.2f× re' "$(calc 'a / b' "$knob_rate" "$re_rate")")" "≥ 300k/s" "$(met "$knob_rate >= 300000")"
# The two halves of that figure apart, in-process on the same log: the scraper alone, the store alone.
IFS=$'\t' read -r split_reports scan_s store_s _ < <("$bin/knob-bench" reports "$work/dense.log" --metrics loss,acc)
[ "$split_reports" = "$dense_reports" ] || echo "warning: knob-bench reports read $split_reports reports, knob stored $dense_reports" >&2
row "the same $dense_lines lines, halves apart (knob-bench reports)" \
  "$(printf 'scraping %.0fk reports/s (%.0f MB/s); storing %.0fk/s' "$(calc 'a / b / 1000' "$split_reports" "$scan_s")" \
      "$(calc 'a / b' "$dense_mb" "$scan_s")" "$(calc 'a / b / 1000' "$split_reports" "$store_s")")" \
  "$(printf 'Python re, parsing only: %.0fk/s' "$(calc 'a / 1000' "$re_rate")")" \
  "$(printf 'scraping %.2f× re' "$(calc 'a / b / c' "$split_reports" "$scan_s" "$re_rate")")" "–" "–"

sparse_wall=$(knob_run sparse "$work/sparse.yaml" "$work/home-sparse")
IFS=$'\t' read -r sparse_reports sparse_s _ < <("$python" "$helper" trial "$work/home-sparse/knob.db" sparse)
sparse_mb=$(calc 'a / 1e6' "$(stat -c %s "$work/sparse.log")")
cat "$work/sparse.log" >/dev/null
start=$(now); cat "$work/sparse.log" >/dev/null; cat_s=$(calc '(b - a) / 1e9' "$start" "$(now)")
knob_mbs=$(calc 'a / b' "$sparse_mb" "$sparse_wall")
row "one trial, $sparse_lines lines ($(printf '%.0f' "$sparse_mb") MB), 1 in 100 a metric: end to end" \
  "$(printf '%.0f MB/s (knob run %.2f s; trial %.2f s; %s reports)' "$knob_mbs" "$sparse_wall" "$sparse_s" "$sparse_reports")" \
  "$(printf 'cat: %.0f MB/s (%.3f s)' "$(calc 'a / b' "$sparse_mb" "$cat_s")" "$cat_s")" \
  "$(printf '%.0f× cat' "$(calc 'a / b' "$sparse_wall" "$cat_s")")" "≥ 200 MB/s" "$(met "$knob_mbs >= 200")"
fi

# ---- 5. knobd over TCP
echo "row 5: knobd over TCP on the $long_trials-trial home, wrk 16 connections, ${wrk_seconds} s each" >&2
home="$work/home-long"
token="$work/token"
(umask 077; "$python" -c 'import secrets; print(secrets.token_hex(24))' >"$token")
auth="Authorization: Bearer $(cat "$token")"
# start_knobd HOME: knobd on a free port of 127.0.0.1, as $daemon_pid, answering at $base
start_knobd() {
  local port
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$knobd" --home "$1" --listen "127.0.0.1:$port" --token-file "$token" --log-level warning >"$work/knobd.log" 2>&1 &
  daemon_pid=$!
  base="http://127.0.0.1:$port"
  for i in $(seq 100); do
    curl -fsS -H "$auth" "$base/healthz" >/dev/null 2>&1 && return
    kill -0 "$daemon_pid" 2>/dev/null || { echo "knobd exited:" >&2; cat "$work/knobd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "knobd did not answer" >&2; exit 1
}
stop_knobd() { kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=; }
start_knobd "$home"
curl -fsS -H "$auth" "$base/v1/experiments/long/optimal" >/dev/null
curl -fsS -H "$auth" "$base/v1/experiments/long/trials?limit=100" >/dev/null
sleep 2
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$daemon_pid/status"; }
rss_idle=$(rss)
# bench URL NAME: req/s, p99 ms, non-2xx
bench() {
  wrk -t2 -c16 -d"${wrk_seconds}s" --timeout 10s --latency -H "$auth" "$base$1" >"$work/wrk-$2.txt" 2>&1
  "$python" "$helper" wrk "$work/wrk-$2.txt"
  if grep -q "Socket errors" "$work/wrk-$2.txt"; then echo "warning: $2: $(grep "Socket errors" "$work/wrk-$2.txt")" >&2; fi
}
IFS=$'\t' read -r h_rps h_p99 h_bad _ < <(bench /healthz healthz)
IFS=$'\t' read -r o_rps o_p99 o_bad _ < <(bench /v1/experiments/long/optimal optimal)
IFS=$'\t' read -r l_rps l_p99 l_bad _ < <(bench /v1/experiments list)
IFS=$'\t' read -r t_rps t_p99 t_bad _ < <(bench "/v1/experiments/long/trials?limit=100" trials)
rss_after=$(rss)
for bad in "$h_bad" "$o_bad" "$l_bad" "$t_bad"; do
  [ "$bad" = 0 ] || echo "warning: some answers were not 2xx: healthz $h_bad, optimal $o_bad, list $l_bad, trials $t_bad" >&2
done
share=$(calc 'a / b' "$o_rps" "$h_rps")
healthz="$(printf '/healthz %.1fk req/s, p99 %.2f ms' "$(calc 'a / 1000' "$h_rps")" "$h_p99")"
row "knobd TCP, /v1/experiments/NAME/optimal" "$(printf '%.1fk req/s, p99 %.2f ms' "$(calc 'a / 1000' "$o_rps")" "$o_p99")" \
  "$healthz" "$(printf '%.0f%% of /healthz' "$(calc 'a * 100' "$share")")" "≥ 50% of /healthz, p99 ≤ 5 ms" \
  "$(met "$share >= 0.5 && $o_p99 <= 5")"
row "knobd TCP, /v1/experiments" "$(printf '%.1fk req/s, p99 %.2f ms' "$(calc 'a / 1000' "$l_rps")" "$l_p99")" \
  "$healthz" "$(printf '%.0f%% of /healthz' "$(calc 'a / b * 100' "$l_rps" "$h_rps")")" "–" "–"
row "knobd TCP, /trials?limit=100 of $long_trials trials" "$(printf '%.1fk req/s, p99 %.2f ms' "$(calc 'a / 1000' "$t_rps")" "$t_p99")" \
  "$healthz" "$(printf '%.0f%% of /healthz' "$(calc 'a / b * 100' "$t_rps" "$h_rps")")" "≥ 2k req/s" "$(met "$t_rps >= 2000")"
row "knobd RSS ($long_trials-trial home)" "$(printf 'idle %s MB, after the load %s MB' "$rss_idle" "$rss_after")" "–" "–" \
  "≤ 40 MB idle" "$(met "$rss_idle <= 40")"
stop_knobd

echo "row 5b: knobd on a home of $experiments finished experiments of $p8_trials trials (copies of row 2's)" >&2
cp -r "$work/home-p8" "$work/home-many"
"$python" "$helper" clone "$work/home-many/knob.db" p8 "$experiments" >/dev/null
start_knobd "$work/home-many"
curl -fsS -H "$auth" "$base/v1/experiments" >/dev/null
sleep 2
rss_idle=$(rss)
IFS=$'\t' read -r m_rps m_p99 _ _ < <(bench /v1/experiments many-list)
IFS=$'\t' read -r mo_rps mo_p99 _ _ < <(bench /v1/experiments/p8-c1/optimal many-optimal)
rss_after=$(rss)
stop_knobd
row "knobd TCP, /v1/experiments of $experiments experiments" "$(printf '%.0f req/s, p99 %.2f ms' "$m_rps" "$m_p99")" \
  "$healthz (row above)" "$(printf '%.1f%% of /healthz' "$(calc 'a / b * 100' "$m_rps" "$h_rps")")" "–" "–"
row "knobd RSS, $experiments finished experiments of $p8_trials trials" "$(printf 'idle %s MB; after /v1/experiments and /optimal (%.1fk req/s) %s MB' "$rss_idle" "$(calc 'a / 1000' "$mo_rps")" "$rss_after")" \
  "–" "–" "≤ 150 MB" "$(met "$rss_idle <= 150 && $rss_after <= 150")"

echo
echo "$machine; bench/system.sh$([ "$quick" = 1 ] && echo ' --quick')$([ -n "$long_override" ] && echo " --long-trials $long_override")$([ "$api_only" = 1 ] && echo ' --api-only')"
echo
echo "| what | knob | baseline (same run) | ratio | bar | |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
