"""Hyperband against random search on the MNIST trainer, with the same budget of epochs.

For each seed, runs examples/mnist/experiment-hyperband.yaml with `random_state` set to the seed, then
random search over the same learning rate and momentum with every trial given r_l epochs (the full
budget, as random search would train), and as many trials as it takes to spend at least as many
epochs as Hyperband did. Prints each seed's best accuracy and epochs spent, side by side, then the
medians. The experiments run with `knob run` in a fresh store each; the trainer's own seed is fixed,
so the results differ between seeds only through the parameters the algorithms chose.

    python3 bench/hyperband.py --knob .build/release/knob --seeds 3
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "mnist", "experiment-hyperband.yaml")


def run(knob, home, spec_text, name):
    """Runs one experiment with `knob run` and returns its trials as `knob trials -o json` gives them."""
    path = os.path.join(os.path.dirname(EXAMPLE), f".bench-{name}.yaml")
    with open(path, "w") as f:
        f.write(spec_text)
    try:
        subprocess.run([knob, "run", "-f", path, "--home", home, "--replace", "-o", "json"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.remove(path)
    out = subprocess.run([knob, "trials", name, "--home", home, "-o", "json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def summary(trials):
    """(best accuracy, epochs spent, trials) of an experiment's trials."""
    best, epochs = 0.0, 0
    for trial in trials:
        values = {a["name"]: a["value"] for a in trial["assignments"]}
        epochs += int(values["epochs"])
        for metric in trial.get("observation", []):
            if metric["name"] == "accuracy":
                best = max(best, metric["max"])
    return best, epochs, len(trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--knob", default=os.path.join(ROOT, ".build", "release", "knob"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    base = open(EXAMPLE).read()
    r_l = int(re.search(r'name: r_l, value: "(\d+)"', base).group(1))
    print(f"{'seed':>4}  {'hyperband best':>14}  {'epochs':>6}  {'trials':>6}  {'random best':>11}  {'epochs':>6}  {'trials':>6}", flush=True)
    rows = []
    for seed in range(1, args.seeds + 1):
        home = tempfile.mkdtemp(prefix="knob-bench-hyperband-")
        hyperband_spec = base.replace("name: mnist-hyperband", "name: bench-hyperband").replace(
            '      - {name: eta, value: "3"}', f'      - {{name: eta, value: "3"}}\n      - {{name: random_state, value: "{seed}"}}')
        hb = summary(run(args.knob, home, hyperband_spec, "bench-hyperband"))
        # Random search: every trial trains the full r_l epochs, enough trials to spend at least as many epochs.
        trials = math.ceil(hb[1] / r_l)
        random_spec = (hyperband_spec.replace("name: bench-hyperband", "name: bench-random")
                       .replace("algorithmName: hyperband", "algorithmName: random")
                       .replace('      - {name: resource_name, value: epochs}\n      - {name: r_l, value: "9"}\n      - {name: eta, value: "3"}\n', "")
                       .replace(f"maxTrialCount: {hb[2]}", f"maxTrialCount: {trials}")
                       .replace('min: "1"\n        max: "9"', f'min: "{r_l}"\n        max: "{r_l}"'))
        rs = summary(run(args.knob, home, random_spec, "bench-random"))
        rows.append((hb, rs))
        print(f"{seed:>4}  {hb[0]:>14.4f}  {hb[1]:>6}  {hb[2]:>6}  {rs[0]:>11.4f}  {rs[1]:>6}  {rs[2]:>6}", flush=True)
    hb_median = statistics.median(r[0][0] for r in rows)
    rs_median = statistics.median(r[1][0] for r in rows)
    wins = sum(1 for hb, rs in rows if hb[0] > rs[0])
    print(f"median  {hb_median:>12.4f}  {'':>6}  {'':>6}  {rs_median:>11.4f}")
    print(f"hyperband better on {wins} of {len(rows)} seeds")


if __name__ == "__main__":
    sys.exit(main())
