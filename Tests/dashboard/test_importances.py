"""The importances the dashboard reads (GET /v1/experiments/{name}/importances) against Optuna's own
FanovaImportanceEvaluator on the same trials: the MNIST example (examples/mnist/experiment.yaml: lr,
momentum, epochs) run by knobd with random search, on a small part of Fashion-MNIST so that it is quick.

Optuna's evaluator needs scikit-learn (installed into .venv by .ci/install-deps)."""
import os
import shutil
import tempfile
import warnings

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

# conftest.py puts Tests/reliability on sys.path.
from knobd_process import REPO, Knobd, report  # noqa: E402

MNIST = os.path.join(REPO, "examples", "mnist")
TRIALS = 36
OPTUNA_SEEDS = range(5)


def mnist_spec():
    """The example's spec with random search (seeded), 36 trials, 4 at a time, and 2,000 training examples."""
    with open(os.path.join(MNIST, "experiment.yaml")) as f:
        document = yaml.safe_load(f)
    document["metadata"]["name"] = "mnist-importance"
    spec = document["spec"]
    spec["algorithm"] = {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "7"}]}
    spec["objective"].pop("goal", None)
    spec["maxTrialCount"] = TRIALS
    spec["parallelTrialCount"] = 4
    spec["trialTemplate"]["command"] += ["--train-limit=2000", "--test-limit=1000"]
    return document


def optuna_distribution(parameter):
    """The Optuna distribution of one of the spec's parameters."""
    space = parameter["feasibleSpace"]
    log = space.get("distribution") in ("logUniform", "logNormal")
    kind = parameter["parameterType"]
    if kind == "double":
        step = float(space["step"]) if space.get("step") else None
        return FloatDistribution(float(space["min"]), float(space["max"]), log=log, step=step)
    if kind == "int":
        return IntDistribution(int(space["min"]), int(space["max"]), log=log, step=int(space.get("step") or 1))
    return CategoricalDistribution(space["list"])


def typed(distribution, text):
    if isinstance(distribution, FloatDistribution):
        return float(text)
    if isinstance(distribution, IntDistribution):
        return int(text)
    return text


def ranks(values):
    """1 for the largest; ties share their mean rank."""
    order = sorted(values, reverse=True)
    return [sum(i + 1 for i, v in enumerate(order) if v == value) / order.count(value) for value in values]


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5


@pytest.fixture(scope="module")
def mnist():
    """(knobd, spec, knob's importances, the trials) once the experiment has run to its end."""
    document = mnist_spec()
    home = tempfile.mkdtemp(prefix="knob-importance-")
    os.chmod(home, 0o700)
    daemon = Knobd(home).start()
    try:
        yield ran(daemon, document)
    finally:
        daemon.stop()
        daemon.kill_leftovers()
        shutil.rmtree(home, ignore_errors=True)


def ran(daemon, document):
    status, _, body = daemon.request("POST", f"/v1/experiments?directory={MNIST}", yaml.safe_dump(document))
    assert status == 201, body
    experiment = daemon.wait_for_end("mnist-importance", timeout=300)
    assert experiment["status"] == "Succeeded", experiment
    status, _, importances = daemon.request("GET", "/v1/experiments/mnist-importance/importances")
    assert status == 200, importances
    status, _, trials = daemon.request("GET", "/v1/experiments/mnist-importance/trials")
    assert status == 200, trials
    return daemon, document["spec"], importances, trials


def optuna_importances(spec, trials, seed):
    distributions = {p["name"]: optuna_distribution(p) for p in spec["parameters"]}
    study = optuna.create_study(direction=spec["objective"]["type"])
    for trial in trials:
        if trial["state"] not in ("Succeeded", "EarlyStopped") or trial.get("objectiveValue") is None:
            continue
        params = {a["name"]: typed(distributions[a["name"]], a["value"]) for a in trial["assignments"]}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=trial["objectiveValue"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))


def test_the_importances_rank_the_parameters_as_optunas_fanova_does(mnist):
    _, spec, knob, trials = mnist
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [p["name"] for p in spec["parameters"]]
    completed = [t for t in trials if t["state"] in ("Succeeded", "EarlyStopped") and t.get("objectiveValue") is not None]
    assert knob["metric"] == "accuracy" and knob["evaluator"] == "fanova" and knob["trials"] == len(completed) == TRIALS, knob
    ours = {item["name"]: item["importance"] for item in knob["importances"]}
    assert sorted(ours) == sorted(names)
    assert abs(sum(ours.values()) - 1) < 1e-9
    knob_order = [item["name"] for item in knob["importances"]]
    runs = []
    for seed in OPTUNA_SEEDS:
        theirs = optuna_importances(spec, trials, seed)
        runs.append(theirs)
        rho = spearman([ours[n] for n in names], [theirs[n] for n in names])
        line = (f"importances, Optuna seed {seed}: knob {', '.join(f'{n}={ours[n]:.3f}' for n in knob_order)}; "
                f"Optuna {', '.join(f'{n}={v:.3f}' for n, v in theirs.items())}; Spearman {rho:.2f}")
        report(line)
        print(line)
        assert rho >= 0.8, f"seed {seed}: knob {ours}, Optuna {theirs}"
    # The values too, within what the two forests' randomness and encodings leave (Optuna gives an int's
    # end values half a cell each, knob each value an equal share): near Optuna's mean over its seeds.
    for name in names:
        mean = sum(run[name] for run in runs) / len(runs)
        assert abs(ours[name] - mean) < 0.1, f"{name}: knob {ours[name]:.3f}, Optuna's mean {mean:.3f} ({runs})"


def test_an_unknown_metric_is_a_404_that_lists_the_metrics(mnist):
    daemon = mnist[0]
    status, _, body = daemon.request("GET", "/v1/experiments/mnist-importance/importances?metric=acuracy")
    assert status == 404, body
    assert body["error"]["code"] == "NotFound"
    assert body["error"]["message"].endswith("did you mean accuracy? its metrics are accuracy, loss"), body
    status, _, body = daemon.request("GET", "/v1/experiments/mnist-importance/importances?metric=loss")
    assert status == 200 and body["metric"] == "loss" and len(body["importances"]) == 3, body
