"""How often the `cmaes` library itself misses the benchmark's target against its own seeds 0–9:
for each function, the median regret at 100 trials over 20 other sets of 10 seeds, compared with
the upper quartile over seeds 0–9. Shows how much of a 10-seed comparison is seed noise.

    bench/.venv/bin/python bench/seed_noise.py
"""

import numpy as np

from reference import FUNCTIONS, run_cmaes


def main():
    for name, (bounds, minimum, f) in FUNCTIONS.items():
        base = [run_cmaes(bounds, f, seed, 100)[0][99] - minimum for seed in range(10)]
        q75 = float(np.quantile(base, 0.75))
        misses = sum(
            np.median([run_cmaes(bounds, f, seed, 100)[0][99] - minimum for seed in range(10 * k, 10 * k + 10)]) > q75
            for k in range(1, 21)
        )
        print(f"{name}: cmaes on seeds 10k..10k+9 (k = 1..20) has its median regret@100 above q75(seeds 0-9) = {q75:.3g} "
              f"in {misses} of 20 sets")


if __name__ == "__main__":
    main()
