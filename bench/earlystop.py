"""Early stopping on the MNIST example: best accuracy and cost with and without each rule.

Run by bench/run-earlystop.sh. Each run is a `knob run` of the example spec on a fresh home, with
the seed, the rule and its settings changed; the figures come from `knob trials -o json`.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rule_block(rule, settings):
    if rule == "none":
        return ""
    lines = [f"  earlyStopping:\n    algorithmName: {rule}\n    algorithmSettings:\n"]
    for item in settings.split():
        name, value = item.split("=", 1)
        lines.append(f"      - name: {name}\n        value: \"{value}\"\n")
    return "".join(lines)


def make_spec(template, folder, name, seed, rule, settings):
    text = template.replace("name: mnist-earlystop", f"name: {name}", 1)
    text = re.sub(r"(- name: random_state\n\s+value: )\"\d+\"", rf'\g<1>"{seed}"', text, count=1)
    text = re.sub(r"  earlyStopping:\n(?:    .*\n)+", rule_block(rule, settings), text, count=1)
    text = text.replace("  trialTemplate:\n", f"  trialTemplate:\n    workingDir: {folder}\n", 1)
    # Each trial's CPU seconds, which other work on the machine does not inflate as it does wall time.
    wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_time.py")
    text = text.replace("    command:\n      - python3\n", f"    command:\n      - python3\n      - {wrapper}\n      - python3\n", 1)
    return text


def run(knob, spec_text, name, home):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(spec_text)
        path = f.name
    try:
        result = subprocess.run([knob, "run", "-f", path, "--home", home, "-o", "json"], capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"knob run {name} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    finally:
        os.unlink(path)
    trials = json.loads(subprocess.run([knob, "trials", name, "--home", home, "-o", "json"], capture_output=True, text=True,
                                       check=True).stdout)
    best = max(t["objectiveValue"] for t in trials if t.get("objectiveValue") is not None)
    epochs = sum(m["count"] for t in trials for m in t.get("observation", []) if m["name"] == "accuracy")
    seconds = sum((parse_time(t["completedAt"]) - parse_time(t["startedAt"])).total_seconds()
                  for t in trials if t.get("startedAt") and t.get("completedAt"))
    stopped = sum(1 for t in trials if t["state"] == "EarlyStopped")
    cpu = 0.0
    for t in trials:
        with open(os.path.join(home, "trials", name, t["name"], "cpu-seconds")) as f:
            cpu += float(f.read())
    return {"best": best, "epochs": epochs, "seconds": seconds, "cpu": cpu, "stopped": stopped, "trials": len(trials)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--knob", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--medianstop", default="min_trials_required=3 start_step=1")
    parser.add_argument("--successivehalving", default="min_resource=1 reduction_factor=3")
    parser.add_argument("--modes", default="none,medianstop,successivehalving", help="which runs to make (none is the baseline)")
    args = parser.parse_args()
    template = open(args.spec).read()
    folder = os.path.dirname(os.path.abspath(args.spec))
    chosen = args.modes.split(",")
    modes = [(m, s) for m, s in [("none", ""), ("medianstop", args.medianstop), ("successivehalving", args.successivehalving)] if m in chosen]
    if not modes or modes[0][0] != "none":
        sys.exit("--modes must include none, the baseline")
    results = {mode: [] for mode, _ in modes}
    print("| seed | early stopping | settings | best accuracy | trials stopped | epochs | trial CPU-seconds | trial-seconds (wall) |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in range(1, args.seeds + 1):
        for mode, settings in modes:
            name = f"es-{mode[:6]}-{seed}"
            with tempfile.TemporaryDirectory(prefix="knob-es-") as home:
                r = run(args.knob, make_spec(template, folder, name, seed, mode, settings), name, home)
            results[mode].append(r)
            print(f"| {seed} | {mode} | {settings or '-'} | {r['best']:.4f} | {r['stopped']}/{r['trials']} | {r['epochs']} | "
                  f"{r['cpu']:.1f} | {r['seconds']:.1f} |", flush=True)
    print()
    print(f"Means over {args.seeds} seeds, ratios to the runs without early stopping:")
    print()
    print("| early stopping | mean best accuracy | Δ accuracy | epochs | ratio | trial CPU-seconds | ratio | trial-seconds (wall) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = results["none"]
    base_best = statistics.mean(r["best"] for r in base)
    base_epochs = statistics.mean(r["epochs"] for r in base)
    base_seconds = statistics.mean(r["seconds"] for r in base)
    base_cpu = statistics.mean(r["cpu"] for r in base)
    for mode, _ in modes:
        rs = results[mode]
        best = statistics.mean(r["best"] for r in rs)
        epochs = statistics.mean(r["epochs"] for r in rs)
        seconds = statistics.mean(r["seconds"] for r in rs)
        cpu = statistics.mean(r["cpu"] for r in rs)
        print(f"| {mode} | {best:.4f} | {best - base_best:+.4f} | {epochs:.1f} | {epochs / base_epochs:.2f} | {cpu:.1f} | {cpu / base_cpu:.2f} | "
              f"{seconds:.1f} | {seconds / base_seconds:.2f} |")


if __name__ == "__main__":
    main()
