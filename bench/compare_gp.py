"""Prints knob's Bayesian optimization beside Optuna's GPSampler as a Markdown table, with the
verdict of each benchmark target:

- median simple regret at 50 and at 100 trials ≤ GPSampler's, per function;
- time per suggestion at 100 trials ≤ 1/10 of GPSampler's in the same run (wall, and process CPU);
- time per suggestion at 500 trials ≤ 0.3 s;
- with 4 trials pending at a time: no duplicate assignment, median regret at 100 trials within 1.5×
  of the sequential run's.

    python3 bench/compare_gp.py bench/out/knob-gp*.json bench/out/optuna-gp*.json
"""

import json
import sys

from compare import fmt, regret


def seconds(value):
    if value is None:
        return "–"
    return f"{value * 1e6:.0f} µs" if value < 1e-3 else (f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s")


def overhead(row, at):
    wall, cpu = row.get(f"overhead@{at}"), row.get(f"cpu@{at}")
    if wall is None:
        return "–"
    return f"{seconds(wall)} ({seconds(cpu)})" if cpu is not None else seconds(wall)


def mode(row):
    return f"{row['pending']} pending" if row.get("pending") else "sequential"


def pending_verdict(label, parallel, sequential):
    """The 4-pending target: no duplicate, median regret at 100 trials within 1.5× of sequential."""
    p, s = parallel["regret@100"][0], sequential["regret@100"][0]
    ok = p <= 1.5 * s and parallel.get("duplicates", 0) == 0
    return (f"- {label}: 4 pending, median regret@100 {fmt(p)} vs sequential {fmt(s)} "
            f"(ratio {p / s if s else float('inf'):.2f}), {parallel.get('duplicates', 0)} duplicates: "
            f"{'met' if ok else 'NOT met'} (≤ 1.5×, none)")


def main():
    rows = []
    for path in sys.argv[1:]:
        rows += json.load(open(path))
    functions = list(dict.fromkeys(r["function"] for r in rows))
    print("| function | sampler | mode | seeds | regret@50 | regret@100 | overhead @100 wall (CPU) | overhead @500 wall (CPU) | duplicates |")
    print("|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for name in functions:
        group = sorted((r for r in rows if r["function"] == name), key=lambda r: (r.get("pending", 0), r["sampler"]))
        for r in group:
            seeds = r["seeds"] if "regret@100" in r else "–"
            print(f"| {name} | {r['sampler']} | {mode(r)} | {seeds} | {regret(r, 50)} | {regret(r, 100)} "
                  f"| {overhead(r, 100)} | {overhead(r, 500)} | {r.get('duplicates', '–') if 'regret@100' in r else '–'} |")

        def find(sampler, pending, key):
            return next((r for r in group if r["sampler"] == sampler and r.get("pending", 0) == pending and key in r), None)

        knob, optuna = find("knob_gp", 0, "regret@100"), find("optuna_gp", 0, "regret@100")
        if knob and optuna:
            for c in (50, 100):
                k, o = knob[f"regret@{c}"][0], optuna[f"regret@{c}"][0]
                verdicts.append(f"- {name}: median regret@{c} knob {fmt(k)} {'≤' if k <= o else '>'} Optuna {fmt(o)}: "
                                f"{'met' if k <= o else 'NOT met'}")
        knob_time, optuna_time = find("knob_gp", 0, "overhead@100"), find("optuna_gp", 0, "overhead@100")
        if knob_time and optuna_time:
            for key, label in (("overhead", "wall"), ("cpu", "CPU")):
                k, o = knob_time.get(f"{key}@100"), optuna_time.get(f"{key}@100")
                if k is None or o is None:
                    continue
                ok = k <= o / 10
                verdicts.append(f"- {name}: overhead @100 ({label}) knob {seconds(k)} vs Optuna {seconds(o)}, "
                                f"ratio 1/{o / k:.1f}: {'met' if ok else 'NOT met'} (≤ 1/10)")
        at500 = find("knob_gp", 0, "overhead@500")
        if at500:
            ok = at500["overhead@500"] <= 0.3
            verdicts.append(f"- {name}: overhead @500 knob {overhead(at500, 500)}: {'met' if ok else 'NOT met'} (≤ 0.3 s)")
        parallel = find("knob_gp", 4, "regret@100")
        if parallel and knob:
            verdicts.append(pending_verdict(name, parallel, knob))
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
