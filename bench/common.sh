# What the side-by-side benchmark scripts share: `--seeds N --wide-seeds M`, the release build of
# knob-bench, and the Python environment of the reference samplers. Sourced, not run.

# Reads --seeds and --wide-seeds into $seeds (default 10) and $wide (default 40); $usage names the script.
parse_seed_args() {
  seeds=10
  wide=40
  while [ $# -gt 0 ]; do
    case "$1" in
      --seeds) seeds="$2"; shift 2 ;;
      --wide-seeds) wide="$2"; shift 2 ;;
      *) echo "usage: $usage [--seeds N] [--wide-seeds M]" >&2; exit 2 ;;
    esac
  done
  functions=branin2,hartmann6,rosenbrock5,ackley10
}

# Builds knob-bench in release ($KNOB_BENCH_CONFIG=debug for a debug build; $bench_binary is the
# executable) and makes bench/out.
build_bench() {
  local config="${KNOB_BENCH_CONFIG:-release}"
  echo "building knob-bench ($config)" >&2
  swift build -c "$config" --product knob-bench >&2
  bench_binary=".build/$config/knob-bench"
  mkdir -p bench/out
}

# build_bench, and sets $python to $KNOB_BENCH_PYTHON or bench/.venv (created when missing) with the
# given packages installed.
prepare_bench() {
  build_bench
  python="${KNOB_BENCH_PYTHON:-bench/.venv/bin/python}"
  if [ ! -x "$python" ]; then
    echo "creating bench/.venv with $*" >&2
    python3 -m venv bench/.venv
  fi
  "$python" -m pip install -q "$@" >&2
}
