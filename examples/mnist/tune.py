#!/usr/bin/env python3
"""Tunes the MNIST trainer from Python through knobd, the way a Katib pipeline calls tune().

    knobd &                                   # or: knob daemon
    pip install ./clients/python              # once
    python3 examples/mnist/tune.py

Only the import and the client differ from Katib's SDK.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

from knob_client import KnobClient, search  # noqa: E402


def main(parameters):
    # Self-contained, as Katib requires: runs the trainer, whose "Epoch N. accuracy=… - loss=…" lines go to the
    # trial's log, where knob reads them.
    import subprocess
    import sys

    subprocess.run([sys.executable, parameters["trainer"], f"--lr={parameters['lr']}", f"--momentum={parameters['momentum']}",
                    f"--epochs={parameters['epochs']}", f"--train-limit={parameters['train_limit']}"], check=True)


if __name__ == "__main__":
    client = KnobClient()                     # Katib: katib.KatibClient()
    name = os.environ.get("TUNE_NAME", "tune-mnist")
    client.tune(
        name=name,
        objective=main,
        parameters={
            "lr": search.double(min=0.01, max=0.2),
            "momentum": search.double(min=0.1, max=1),
            "epochs": search.int(min=1, max=5),
            "no_cuda": True,                  # fixed values pass through unchanged
            "trainer": os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py"),
            "train_limit": int(os.environ.get("TUNE_TRAIN_LIMIT", "20000")),
        },
        algorithm_name="cmaes",
        objective_metric_name="accuracy",
        additional_metric_names=["loss"],
        max_trial_count=12,
        parallel_trial_count=2,
        env_per_trial={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    best = None
    while best is None:                       # polled until a trial has reported accuracy
        best = client.get_optimal_hyperparameters(name)
    client.wait_for_experiment_condition(name, timeout=1800, polling_interval=2)
    best = client.get_optimal_hyperparameters(name)["currentOptimalTrial"]
    accuracy = next(m["max"] for m in best["observation"]["metrics"] if m["name"] == "accuracy")
    print(f"best trial {best['bestTrialName']}: accuracy={accuracy}")
    for hp in best["parameterAssignments"]:
        print(f"  {hp['name']} = {hp['value']}")
