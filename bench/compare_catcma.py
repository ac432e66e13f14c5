"""Prints knob's `cmaes` on the mixed function beside the `cmaes` library's CatCMAwM as a Markdown
table, then the verdict of the target: knob's median regret at 100 trials ≤ the library's in the same
run, with a paired bootstrap (by seed) of the difference of medians. With --sets, also in how many
disjoint sets of 40 and of 10 consecutive seeds knob's median regret at 100 trials is ≤ the library's.

    python3 bench/compare_catcma.py knob-cmaes.json [knob-random.json] catcma-reference.json [--sets]
"""

import json
import statistics
import sys

from compare import fmt, regret
from compare_tpe import bootstrap


def main():
    rows = []
    for path in (a for a in sys.argv[1:] if not a.startswith("--")):
        rows += json.load(open(path))
    print("| function | sampler | seeds | regret@25 | regret@50 | regret@100 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['function']} | {r['sampler']} | {r['seeds']} | {regret(r, 25)} | {regret(r, 50)} | {regret(r, 100)} |")
    knob = next(r for r in rows if r["sampler"] == "knob_cmaes")
    library = next(r for r in rows if r["sampler"] == "cmaes_catcmawm")
    print()
    for c in (50, 100):
        km, lm = knob[f"regret@{c}"][0], library[f"regret@{c}"][0]
        lo, hi = bootstrap(knob[f"regrets@{c}"], library[f"regrets@{c}"])
        if km <= lm:
            verdict = "met" + (" (beyond noise)" if hi < 0 else "")
        else:
            verdict = "NOT met" + (" (the difference is within seed noise)" if lo <= 0 else "")
        print(f"- {knob['function']}, {knob['seeds']} seeds: knob_cmaes vs cmaes_catcmawm, median regret@{c} {fmt(km)} vs {fmt(lm)}, "
              f"difference 95% CI [{fmt(lo)}, {fmt(hi)}]: {verdict}{' (the target)' if c == 100 else ''}")
    if "--sets" in sys.argv:
        k, l = knob["regrets@100"], library["regrets@100"]
        for size in (40, 10):
            sets = len(k) // size
            wins = sum(statistics.median(k[i * size:(i + 1) * size]) <= statistics.median(l[i * size:(i + 1) * size])
                       for i in range(sets))
            print(f"- disjoint sets of {size} seeds: knob_cmaes's median regret@100 ≤ cmaes_catcmawm's in {wins} of {sets}")


if __name__ == "__main__":
    main()
