"""Prints knob's `tpe` and `multivariate-tpe` beside Optuna's TPESampler and hyperopt's tpe.suggest as
a Markdown table, then the verdict of each benchmark target:

- median regret at 50 and 100 trials ≤ the reference's (`tpe` against hyperopt and against Optuna's
  default and independent TPE; `multivariate-tpe` against Optuna's default, which is multivariate),
  and the functions on which each is below Optuna's default beyond noise (the interval entirely below 0),
  or a difference within seed noise: a paired bootstrap (by seed) of the difference of medians whose
  95% interval includes 0;
- time per suggestion at 100 trials ≤ 1/10 of Optuna's default TPESampler's in the same run, and ≤ 5 ms at 1000 trials;
- with 4 trials pending at a time: no duplicate, median regret at 100 trials within 1.5× of sequential,
  or above 1.5× within seed noise: a paired bootstrap of the ratio whose 95% interval reaches 1.5
  (bench/compare_pending.py, which bench/run-tpe-pending.sh runs over 600 seeds).

    python3 bench/compare_tpe.py bench/out/knob-tpe*.json bench/out/knob-multivariate-tpe*.json bench/out/tpe-reference*.json
"""

import json
import sys

from compare import fmt, paired_interval, regret
from compare_gp import mode, overhead, seconds
from compare_pending import verdict as pending_ratio


def bootstrap(a, b):
    """95% interval of median(a) − median(b) over seeds resampled in pairs."""
    return paired_interval(a, b, lambda x, y: x - y)


def main():
    rows = []
    for path in sys.argv[1:]:
        rows += json.load(open(path))
    functions = list(dict.fromkeys(r["function"] for r in rows))
    print("| function | sampler | mode | seeds | regret@25 | regret@50 | regret@100 | overhead @100 wall (CPU) | overhead @1000 wall (CPU) | duplicates |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    beyond = {}  # (mine, checkpoint) -> functions where mine is below Optuna's default beyond noise
    for name in functions:
        group = sorted((r for r in rows if r["function"] == name), key=lambda r: (r.get("pending", 0), r["sampler"]))
        for r in group:
            print(f"| {name} | {r['sampler']} | {mode(r)} | {r['seeds']} | {regret(r, 25)} | {regret(r, 50)} | {regret(r, 100)} "
                  f"| {overhead(r, 100)} | {overhead(r, 1000)} | {r.get('duplicates', '–')} |")

        def find(sampler, pending=0):
            return next((r for r in group if r["sampler"] == sampler and r.get("pending", 0) == pending), None)

        pairs = [("knob_tpe", "hyperopt_tpe"), ("knob_tpe", "optuna_tpe_univariate"), ("knob_tpe", "optuna_tpe"),
                 ("knob_multivariate-tpe", "optuna_tpe")]
        for mine, theirs in pairs:
            k, o = find(mine), find(theirs)
            if not (k and o):
                continue
            for c in (50, 100):
                km, om = k[f"regret@{c}"][0], o[f"regret@{c}"][0]
                lo, hi = bootstrap(k[f"regrets@{c}"], o[f"regrets@{c}"])
                if km <= om:
                    verdict = "met" + (" (beyond noise)" if hi < 0 else "")
                elif lo <= 0:
                    verdict = "met within seed noise"
                else:
                    verdict = "NOT met"
                if theirs == "optuna_tpe" and hi < 0:
                    beyond.setdefault((mine, c), []).append(name)
                verdicts.append(f"- {name}: {mine} vs {theirs}, median regret@{c} {fmt(km)} vs {fmt(om)}, "
                                f"difference 95% CI [{fmt(lo)}, {fmt(hi)}]: {verdict}")
        for mine in ("knob_tpe", "knob_multivariate-tpe"):
            k, o = find(mine), find("optuna_tpe")
            if k and o and k.get("overhead@100") and o.get("overhead@100"):
                ratio = o["overhead@100"] / k["overhead@100"]
                verdicts.append(f"- {name}: {mine} overhead @100 {seconds(k['overhead@100'])} vs {o['sampler']} "
                                f"{seconds(o['overhead@100'])}, ratio 1/{ratio:.0f}: {'met' if ratio >= 10 else 'NOT met'} (≤ 1/10)")
            if k and k.get("overhead@1000"):
                verdicts.append(f"- {name}: {mine} overhead @1000 {overhead(k, 1000)}: "
                                f"{'met' if k['overhead@1000'] <= 5e-3 else 'NOT met'} (≤ 5 ms)")
            p = find(mine, 4)
            if k and p:
                pm, sm, ratio, lo, hi, word = pending_ratio(p["regrets@100"], k["regrets@100"], p.get("duplicates", 0))
                verdicts.append(f"- {name}: {mine}: 4 pending, median regret@100 {fmt(pm)} vs sequential {fmt(sm)} "
                                f"(ratio {ratio:.2f}, 95% CI [{lo:.2f}, {hi:.2f}]), {p.get('duplicates', 0)} duplicates: {word} (≤ 1.5×, none)")
            op = find("optuna_tpe", 4)
            if p and op:
                pm, om = p["regret@100"][0], op["regret@100"][0]
                lo, hi = bootstrap(p["regrets@100"], op["regrets@100"])
                reading = "below beyond noise" if hi < 0 else "above beyond noise" if lo > 0 else "level within noise"
                verdicts.append(f"- {name}: {mine} vs optuna_tpe, both 4 pending, median regret@100 {fmt(pm)} vs {fmt(om)}, "
                                f"difference 95% CI [{fmt(lo)}, {fmt(hi)}]: {reading} (for reading)")
    print()
    print("\n".join(verdicts))
    for mine in ("knob_tpe", "knob_multivariate-tpe"):
        for c in (50, 100):
            names = beyond.get((mine, c), [])
            print(f"- {mine} below optuna_tpe beyond noise at {c} trials on {len(names)} function(s)" + (f": {', '.join(names)}" if names else ""))


if __name__ == "__main__":
    main()
