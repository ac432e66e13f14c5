"""The `cmaes` library's CatCMAwM (CatCMA with margin) on the mixed function `mixed6` of knob-bench:
a log-scaled learning rate and a momentum (continuous; the learning rate searched on its
logarithm, as knob does), an int width (integer), and optimizer, activation and initialisation
(categoricals of 3, 5 and 4 choices). The library runs with its defaults (mean at the centre of the
box, its own initial step and population), one trial at a time, asked and told per generation.

Same seeds and budget as knob-bench; prints JSON rows of the same shape.

    python bench/catcma.py [--seeds 10] [--first-seed 0] [--trials 100]
"""

import argparse
import json
import math

import numpy as np

OPTIMIZERS = [(-1, 0.9, 0.2), (-3, 0.5, 0), (-2.5, 0.7, 0.1)]  # best log10(lr), best momentum, offset
ACTIVATIONS = [(12, 0.05), (6, 0.3), (3, 0.6), (16, 0), (9, 0.1)]  # best width, offset
INIT_OFFSETS = ([0, 0.15, 0.25, 0.2], [0.15, 0, 0.25, 0.2])  # with a rectifier (relu, elu), with the others


def mixed6(lr, momentum, width, optimizer, activation, initialisation):
    best_log_lr, best_momentum, optimizer_offset = OPTIMIZERS[optimizer]
    best_width, activation_offset = ACTIVATIONS[activation]
    t, m, w = math.log10(lr) - best_log_lr, momentum - best_momentum, (width - best_width) / 10
    init_offset = INIT_OFFSETS[0 if activation in (0, 4) else 1][initialisation]
    return optimizer_offset + activation_offset + init_offset + 0.25 * t * t + 2 * m * m + 0.5 * t * m + w * w


def run_catcma(seed, trials):
    from cmaes import CatCMAwM

    optimizer = CatCMAwM(x_space=[[math.log(1e-4), math.log(1.0)], [0.0, 1.0]], z_space=[list(range(1, 21))],
                         c_space=[3, 5, 4], seed=seed)
    best, solutions, best_so_far = [], [], math.inf
    while len(best) < trials:
        solution = optimizer.ask()
        choices = [int(np.argmax(row)) for row in solution.c]
        value = mixed6(math.exp(solution.x[0]), solution.x[1], int(solution.z[0]), *choices)
        solutions.append((solution, value))
        if len(solutions) == optimizer.population_size:
            optimizer.tell(solutions)
            solutions = []
        best_so_far = min(best_so_far, value)
        best.append(best_so_far)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    regrets = {c: [] for c in (25, 50, 100) if c <= args.trials}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        best = run_catcma(seed, args.trials)
        for c in regrets:
            regrets[c].append(best[c - 1])
    row = {"function": "mixed6", "sampler": "cmaes_catcmawm", "seeds": args.seeds, "pending": 0, "duplicates": 0}
    for c, values in regrets.items():
        row[f"regret@{c}"] = [float(np.quantile(values, q)) for q in (0.5, 0.25, 0.75)]
        row[f"regrets@{c}"] = [float(v) for v in values]
    print(json.dumps([row], indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
