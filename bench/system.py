"""What bench/system.sh needs from Python: the Optuna and `re` baselines, the test logs, and the
figures it reads back from a knob store or from wrk. One subcommand a call; results on stdout as
plain numbers (or tab-separated fields) for the shell to print.

  system.py optuna N JOBS              seconds for study.optimize of N subprocess trials, in memory
  system.py katib-re FILE NAMES        reports and seconds for Katib's default filter over FILE
  system.py dense FILE LINES           writes LINES lines of `loss=… acc=…`
  system.py sparse FILE LINES          writes LINES lines of ~83 bytes, one in 100 with `loss=…`
  system.py windows DB NAME W          per-trial cost of the first and the last W trials, by end time
  system.py trial DB NAME              metric rows and seconds from start to end of NAME's only trial
  system.py wrk FILE                   req/s, p99 in ms and non-2xx count from wrk --latency output
  system.py clone DB NAME COPIES       copies finished experiment NAME (trials, metrics, events) into
                                       NAME-c1 … so that the store holds COPIES experiments like it
"""
import re
import sqlite3
import subprocess
import sys
import time
from datetime import datetime


def optuna_run(n, jobs):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        out = subprocess.run(["/bin/echo", f"loss={x}"], capture_output=True, text=True, check=True).stdout
        return float(out.strip().split("=", 1)[1])

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=1))
    start = time.perf_counter()
    study.optimize(objective, n_trials=n, n_jobs=jobs)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == n
    print(f"{elapsed:.6f}")


# Katib's default StdOut metrics filter (pkg/metricscollector/v1beta1/common: DefaultFilter).
KATIB_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def katib_re(path, names):
    wanted = set(names.split(","))
    pattern = re.compile(KATIB_FILTER)
    with open(path) as f:
        lines = f.readlines()
    start = time.perf_counter()
    reports = []
    for line in lines:
        for m in pattern.finditer(line):
            if m.group(1) in wanted:
                reports.append((m.group(1), float(m.group(2))))
    elapsed = time.perf_counter() - start
    print(f"{len(reports)}\t{elapsed:.6f}")


def write_dense(path, lines):
    with open(path, "w") as f:
        for i in range(lines):
            f.write(f"loss={1.0 / (i + 1):.6f} acc={i / lines:.6f}\n")


def write_sparse(path, lines):
    filler = "epoch {e:4d} batch {b:7d}: read shard, forward, backward, optimizer step done {p}\n"
    with open(path, "w") as f:
        for i in range(lines):
            if i % 100 == 99:
                f.write(f"loss={1.0 / (i + 1):.8f}\n")
            else:
                f.write(filler.format(e=i // 10000, b=i, p="." * 8))


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def windows(db, name, width):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT t.startedAt, t.completedAt FROM trial t JOIN experiment e ON e.id = t.experimentId "
        "WHERE e.name = ? AND t.completedAt IS NOT NULL ORDER BY t.completedAt, t.sequence", (name,)).fetchall()
    ends = [parse_time(r[1]) for r in rows]
    starts = [parse_time(r[0]) for r in rows]
    n = len(ends)
    first = (ends[width - 1] - min(starts)) / width
    last = (ends[n - 1] - ends[n - width - 1]) / width
    first_run = sum(e - s for s, e in zip(starts[:width], ends[:width])) / width
    last_run = sum(e - s for s, e in zip(starts[-width:], ends[-width:])) / width
    print(f"{n}\t{first:.6f}\t{last:.6f}\t{first_run:.6f}\t{last_run:.6f}")


def trial(db, name):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (tid, started, completed, state), = con.execute(
        "SELECT t.id, t.startedAt, t.completedAt, t.state FROM trial t JOIN experiment e ON e.id = t.experimentId "
        "WHERE e.name = ?", (name,)).fetchall()
    (count,), = con.execute("SELECT count(*) FROM metric WHERE trialId = ?", (tid,)).fetchall()
    print(f"{count}\t{parse_time(completed) - parse_time(started):.6f}\t{state}")


def wrk(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    print(f"{rps:.0f}\t{p99:.2f}\t{bad.group(1) if bad else 0}\t{errors.group(1) if errors else ''}")


def clone(db, name, copies):
    con = sqlite3.connect(db)
    con.execute("BEGIN")
    (source,), = con.execute("SELECT id FROM experiment WHERE name = ?", (name,)).fetchall()
    for k in range(1, copies):
        copy = f"{name}-c{k}"
        cur = con.execute(
            "INSERT INTO experiment (name, specText, specJSON, status, reason, message, seed, objectiveType, "
            "objectiveMetricName, directory, createdAt, startedAt, completedAt) "
            "SELECT ?, replace(specText, 'name: ' || name, 'name: ' || ?), replace(specJSON, '\"' || name || '\"', '\"' || ? || '\"'), "
            "status, reason, message, seed, objectiveType, objectiveMetricName, directory, createdAt, startedAt, completedAt "
            "FROM experiment WHERE id = ?", (copy, copy, copy, source))
        target = cur.lastrowid
        con.execute(
            "INSERT INTO trial (experimentId, sequence, name, assignments, suggesterMetadata, state, reason, message, "
            "runnerHandle, logPath, logOffset, observation, objectiveValue, exitCode, createdAt, startedAt, completedAt) "
            "SELECT ?, sequence, ? || '-' || sequence, assignments, suggesterMetadata, state, reason, message, "
            "runnerHandle, logPath, logOffset, observation, objectiveValue, exitCode, createdAt, startedAt, completedAt "
            "FROM trial WHERE experimentId = ? ORDER BY sequence", (target, copy, source))
        con.execute(
            "INSERT INTO metric (trialId, name, value, text, step, timestamp) "
            "SELECT n.id, m.name, m.value, m.text, m.step, m.timestamp FROM metric m "
            "JOIN trial o ON o.id = m.trialId JOIN trial n ON n.experimentId = ? AND n.sequence = o.sequence "
            "WHERE o.experimentId = ? ORDER BY m.id", (target, source))
        con.execute(
            "INSERT INTO event (experimentId, time, kind, trialName, message) "
            "SELECT ?, time, kind, trialName, message FROM event WHERE experimentId = ? ORDER BY id", (target, source))
    con.commit()
    (experiments,), = con.execute("SELECT count(*) FROM experiment").fetchall()
    (trials,), = con.execute("SELECT count(*) FROM trial").fetchall()
    print(f"{experiments}\t{trials}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "optuna":
        optuna_run(int(args[0]), int(args[1]))
    elif command == "katib-re":
        katib_re(args[0], args[1])
    elif command == "dense":
        write_dense(args[0], int(args[1]))
    elif command == "sparse":
        write_sparse(args[0], int(args[1]))
    elif command == "windows":
        windows(args[0], args[1], int(args[2]))
    elif command == "trial":
        trial(args[0], args[1])
    elif command == "wrk":
        wrk(args[0])
    elif command == "clone":
        clone(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {command}")
