"""Runs a command and writes the CPU seconds (user + system) it used to $KNOB_TRIAL_DIR/cpu-seconds,
also when the trial is stopped: SIGTERM goes to the whole process group, so the command gets it
and this wrapper, which ignores it, records what the command used before it died.

    python3 bench/cpu_time.py COMMAND [ARGS...]
"""
import os
import resource
import signal
import subprocess
import sys

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(sys.argv[1:], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
code = child.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(os.path.join(os.environ["KNOB_TRIAL_DIR"], "cpu-seconds"), "w") as f:
    f.write(f"{usage.ru_utime + usage.ru_stime:.3f}\n")
sys.exit(code if code >= 0 else 128 - code)
