"""Prints knob's benchmark rows beside the reference rows as a Markdown table, with the verdict of
the targets: knob's median regret at 100 trials within the `cmaes` library's interquartile range or
better, at most 1 ms per suggestion at 1000 trials, and at most 1 ms for the first suggestion of a
restarted process at 1000 trials ("cold start": its replay checkpoint kept in the state folder;
"nothing kept" beside it replays the whole history).

    python3 bench/compare.py knob.json reference.json
"""

import json
import random
import statistics
import sys


def fmt(value):
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


def regret(row, c):
    values = row.get(f"regret@{c}")
    return f"{fmt(values[0])} [{fmt(values[1])}, {fmt(values[2])}]" if values else "–"


def paired_interval(a, b, combine, draws=4000, seed=0):
    """95% interval of combine(median(a), median(b)) over seeds resampled in pairs (a paired bootstrap)."""
    rng = random.Random(seed)
    n = min(len(a), len(b))
    values = []
    for _ in range(draws):
        picks = [rng.randrange(n) for _ in range(n)]
        values.append(combine(statistics.median([a[i] for i in picks]), statistics.median([b[i] for i in picks])))
    values.sort()
    return values[int(0.025 * draws)], values[int(0.975 * draws) - 1]


def duration(value):
    if value is None:
        return "–"
    return f"{value * 1e6:.0f} µs" if value < 1e-3 else f"{value * 1e3:.2f} ms"


def overhead(row, at):
    return duration(row.get(f"overhead@{at}"))


def main():
    rows = []
    for path in sys.argv[1:]:
        rows += json.load(open(path))
    functions = list(dict.fromkeys(r["function"] for r in rows))
    print("| function | sampler | seeds | regret@25 | regret@50 | regret@100 | overhead @100 | overhead @1000 "
          "| cold start @1000 | nothing kept @1000 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for name in functions:
        group = [r for r in rows if r["function"] == name]
        for r in group:
            print(f"| {name} | {r['sampler']} | {r['seeds']} | {regret(r, 25)} | {regret(r, 50)} | {regret(r, 100)} "
                  f"| {overhead(r, 100)} | {overhead(r, 1000)} | {duration(r.get('cold@1000'))} | {duration(r.get('replay@1000'))} |")
        knob = [r for r in group if r["sampler"].startswith("knob_")]
        reference = [r for r in group if r["sampler"] == "cmaes_direct"]
        for k in knob:
            if reference and "regret@100" in k:
                median, upper = k["regret@100"][0], reference[0]["regret@100"][2]
                ok = median <= upper
                verdicts.append(f"- {name}: {k['sampler']} median regret@100 {fmt(median)} "
                                f"{'≤' if ok else '>'} cmaes q75 {fmt(upper)}: {'met' if ok else 'NOT met'}")
            if "overhead@1000" in k:
                ok = k["overhead@1000"] <= 1e-3
                verdicts.append(f"- {name}: {k['sampler']} overhead @1000 {overhead(k, 1000)}: {'met' if ok else 'NOT met'} (≤ 1 ms)")
            if "cold@1000" in k:
                ok = k["cold@1000"] <= 1e-3
                verdicts.append(f"- {name}: {k['sampler']} cold start @1000 {duration(k['cold@1000'])}: {'met' if ok else 'NOT met'} (≤ 1 ms)")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
