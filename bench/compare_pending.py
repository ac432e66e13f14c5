"""How much 4 pending trials cost a suggester, over many seeds: per function, the median regret at
100 trials with 4 trials pending at a time against the same suggester one trial at a time, their
ratio, and a paired bootstrap (by seed) of that ratio. The target is a ratio ≤ 1.5 with no duplicate.

A run of 40 seeds is read three ways: its own ratio with the bootstrap's 95% interval ("met within
seed noise" when the ratio is above 1.5 but the interval reaches 1.5), the ratio of each block of
40 consecutive seeds of the long run (how far one block of 40 strays), and the ratio over all seeds.

    python3 bench/compare_pending.py --block 40 bench/out/knob-tpe-many.json bench/out/knob-tpe-pending-many.json
"""

import json
import sys
from statistics import median

from compare import fmt, paired_interval

TARGET = 1.5


def ratio_interval(parallel, sequential):
    """95% interval of median(parallel)/median(sequential) over seeds resampled in pairs."""
    return paired_interval(parallel, sequential, lambda p, s: p / s if s > 0 else float("inf"))


def verdict(parallel, sequential, duplicates):
    """The target's verdict and the figures it rests on, for one set of seeds."""
    p, s = median(parallel), median(sequential)
    ratio = p / s if s > 0 else float("inf")
    lo, hi = ratio_interval(parallel, sequential)
    if duplicates:
        word = "NOT met (duplicates)"
    elif ratio <= TARGET:
        word = "met"
    elif lo <= TARGET:
        word = "met within seed noise"
    else:
        word = "NOT met"
    return p, s, ratio, lo, hi, word


def main():
    args = sys.argv[1:]
    block = 40
    if args[:1] == ["--block"]:
        block, args = int(args[1]), args[2:]
    rows = []
    for path in args:
        rows += json.load(open(path))
    keys = list(dict.fromkeys((r["sampler"], r["function"]) for r in rows))
    print(f"| function | sampler | seeds | regret@100 sequential | regret@100 4 pending | ratio [95% CI] | duplicates | verdict "
          f"| first {block} seeds: ratio [95% CI], verdict | ratio of each block of {block} seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sampler, function in keys:
        pick = [r for r in rows if r["sampler"] == sampler and r["function"] == function]
        seq = next((r for r in pick if not r.get("pending")), None)
        par = next((r for r in pick if r.get("pending") == 4), None)
        if not (seq and par):
            continue
        a, b = par["regrets@100"], seq["regrets@100"]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        dup = par.get("duplicates", 0)
        p, s, ratio, lo, hi, word = verdict(a, b, dup)
        first = verdict(a[:block], b[:block], dup)
        blocks = [median(a[i:i + block]) / median(b[i:i + block]) for i in range(0, n - block + 1, block)]
        print(f"| {function} | {sampler} | {n} | {fmt(s)} | {fmt(p)} | {ratio:.2f} [{lo:.2f}, {hi:.2f}] | {dup} | {word} "
              f"| {first[2]:.2f} [{first[3]:.2f}, {first[4]:.2f}], {first[5]} | {' '.join(f'{x:.2f}' for x in blocks)} |")


if __name__ == "__main__":
    main()
