"""Runs Optuna's GPSampler from knob's initial design: the first trials of each seed, as
`knob-bench --trace` printed them, are enqueued before GPSampler takes over. It separates the
model and acquisition (same start for both) from the luck of the initial design.

    .build/release/knob-bench --algorithm gp --functions hartmann6 --seeds 10 --trials 10 \\
        --overhead-seeds 0 --trace 2> bench/out/knob-start.txt > /dev/null
    bench/.venv/bin/python bench/same_start.py bench/out/knob-start.txt hartmann6 [--trials 100]
"""

import argparse
import math
import re

import reference


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("function")
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bounds, minimum, f = reference.FUNCTIONS[args.function]
    starts = {}
    for line in open(args.trace):
        match = re.match(r"s(\d+)\s+\d+\s+\S+\s+\S+\s+\[([^\]]*)\]", line)
        if match:
            unit = [float(u) for u in match.group(2).split()]
            starts.setdefault(int(match.group(1)), []).append([lo + u * (hi - lo) for u, (lo, hi) in zip(unit, bounds)])
    for seed, points in sorted(starts.items()):
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed, deterministic_objective=True))
        for x in points:
            study.enqueue_trial({f"x{i}": v for i, v in enumerate(x)})
        best, regrets = math.inf, {}
        for n in range(1, args.trials + 1):
            trial = study.ask()
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
            value = f(x)
            study.tell(trial, value)
            best = min(best, value)
            if n in (50, 100):
                regrets[n] = best - minimum
        print(f"seed {seed}: GPSampler from knob's first {len(points)} points: "
              + ", ".join(f"regret@{n} {r:.3g}" for n, r in regrets.items()), flush=True)


if __name__ == "__main__":
    main()
