#!/usr/bin/env python3
"""A pipeline step written for Katib's Python SDK, run on knob: only the import differs.

    knobd &                                   # or: knob daemon
    python3 examples/mnist/tune_katib_sdk.py

It tunes the MNIST trainer (train.py) with CMA-ES, 12 trials, 2 at a time; waits for the experiment,
polling its status as the pipeline does; then polls get_optimal_hyperparameters until it has a value
and prints the best parameters, read the way the older SDK's dict is read. On knob the trials run as
local processes, so base_image is not used (tune() says so once).

It ends by downloading the best trial's model (model.npz, which train.py saves in its artifacts directory) to
./tune-mnist-katib-best and printing its path.

TUNE_NAME, TUNE_TRIALS, TUNE_TRAIN_LIMIT, TUNE_POLL_SECONDS and TUNE_MODEL_DIR change the name, the trial count,
the training examples per trial, the polling interval and where the model goes.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

from knob_client import katib  # noqa: E402  (Katib: from kubeflow import katib)


def main(parameters):
    # Self-contained, as Katib requires. Searched values arrive as text, as Katib passes them; the
    # trainer's "Epoch N. accuracy=… - loss=…" lines go to the trial's log, where the metrics are read.
    import subprocess
    import sys

    lr = float(parameters["lr"])
    momentum = float(parameters["momentum"])
    epochs = int(parameters["epochs"])
    command = [sys.executable, parameters["trainer"], f"--lr={lr}", f"--momentum={momentum}", f"--epochs={epochs}",
               f"--train-limit={parameters['train_limit']}"]
    if parameters["no_cuda"]:
        print("training on the CPU", flush=True)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    katib_client = katib.KatibClient()
    exp_name = os.environ.get("TUNE_NAME", "tune-mnist-katib")
    poll_seconds = float(os.environ.get("TUNE_POLL_SECONDS", "10"))
    katib_client.tune(
        name=exp_name,
        objective=main,
        parameters={
            "lr": katib.search.double(min=0.01, max=0.2),
            "momentum": katib.search.double(min=0.1, max=0.9),
            "epochs": katib.search.int(min=1, max=5),
            "no_cuda": True,
            "trainer": os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py"),
            "train_limit": int(os.environ.get("TUNE_TRAIN_LIMIT", "20000")),
        },
        algorithm_name="cmaes",
        objective_metric_name="accuracy",
        additional_metric_names=["loss"],
        max_trial_count=int(os.environ.get("TUNE_TRIALS", "12")),
        parallel_trial_count=2,
        base_image=katib.BASE_IMAGE_PYTORCH,
        env_per_trial={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )

    status = katib_client.get_experiment_status(exp_name)
    while status not in ("Succeeded", "Failed"):
        time.sleep(poll_seconds)
        status = katib_client.get_experiment_status(exp_name)
    print(f"experiment {exp_name}: {status}")

    best = katib_client.get_optimal_hyperparameters(exp_name)
    while best is None:  # polled until a trial has reported the objective
        time.sleep(poll_seconds)
        best = katib_client.get_optimal_hyperparameters(exp_name)
    accuracy = next(m["max"] for m in best["currentOptimalTrial"]["observation"]["metrics"] if m["name"] == "accuracy")
    print(f"best trial {best['currentOptimalTrial']['bestTrialName']}: accuracy={accuracy}")
    for hp in best["currentOptimalTrial"]["parameterAssignments"]:
        print(f"  {hp['name']} = {hp['value']}")

    # The pipeline's next step takes the best trial's model: the trainer saved it in its artifacts directory
    # ($KNOB_ARTIFACTS_DIR), where the pipeline on Katib uploaded it to a bucket.
    import numpy as np
    from knob_client import KnobClient

    directory = os.environ.get("TUNE_MODEL_DIR", os.path.join(os.getcwd(), f"{exp_name}-best"))
    [model] = [path for path in KnobClient().download_artifacts(exp_name, directory=directory) if path.endswith(".npz")]
    with np.load(model) as weights:
        shapes = ", ".join(f"{name} {weights[name].shape}" for name in weights.files)
    print(f"best model: {model} ({shapes})")
