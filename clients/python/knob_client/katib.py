"""Katib's Python SDK over knobd: `from knob_client import katib` in place of `from kubeflow import katib`.

`katib.KatibClient()` has the methods of Katib's `KatibClient` with their signatures and return values:
`V1beta1Experiment`, `V1beta1Trial` and `V1beta1OptimalTrial` objects with Katib's attribute paths
(`experiment.status.conditions`, `trial.spec.parameter_assignments`, `.to_dict()`), built from knobd's answers.
An experiment's conditions are those `knob get NAME -o json` prints.

What the older SDK returned as dicts reads the same way from these objects: `get_experiment_status` returns
the type of the last condition, and `get_optimal_hyperparameters(name)["currentOptimalTrial"]` is the best trial
as the older dict had it.

`tune()` takes Katib's arguments. knobd runs its trials as local processes; the arguments that describe a
trial's container (`base_image`, `packages_to_install`, `resources_per_trial`, ...) are accepted, and a warning
says they are not used. As in Katib, the objective gets each searched value as the text of its assignment
(call `float(...)` or `int(...)` on it) and fixed values as they were given.
"""

import time
import urllib.parse
import warnings

from . import katib_models as models
from . import search
from . import katib_job
from .client import KnobClient, KnobError, experiment_document, report_metrics, searched_parameters
from .katib_job import kubernetes_json
from .katib_models import (V1beta1Experiment, V1beta1ExperimentCondition, V1beta1OptimalTrial, V1beta1Trial,  # noqa: F401
                           V1ObjectMeta)

API_VERSION = "kubeflow.org/v1beta1"
DEFAULT_TIMEOUT = 120
DEFAULT_PRIMARY_CONTAINER_NAME = "training-container"
DEFAULT_DB_MANAGER_ADDRESS = "katib-db-manager.kubeflow:6789"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
BASE_IMAGE_TENSORFLOW = "docker.io/tensorflow/tensorflow:2.13.0"
BASE_IMAGE_TENSORFLOW_GPU = "docker.io/tensorflow/tensorflow:2.13.0-gpu"
BASE_IMAGE_PYTORCH = "docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime"

__all__ = ["KatibClient", "search", "report_metrics", "models", "V1beta1Experiment", "V1beta1Trial",
           "V1beta1OptimalTrial", "V1ObjectMeta", "BASE_IMAGE_PYTORCH", "BASE_IMAGE_TENSORFLOW",
           "BASE_IMAGE_TENSORFLOW_GPU"]

# knob's trial states that end a trial, and Katib's condition type for each (they have the same names).
_TRIAL_ENDS = ("Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable")

# tune() arguments that describe a trial's container on Kubernetes, with Katib's defaults.
_CONTAINER_ARGUMENTS = {"base_image": BASE_IMAGE_PYTORCH, "namespace": None, "resources_per_trial": None,
                        "packages_to_install": None, "pip_index_urls": ["https://pypi.org/simple"],
                        "trial_active_deadline_seconds": None, "storage_config": None}


class KatibClient:
    """Katib's KatibClient, talking to knobd. `config_file`, `context` and `client_configuration` configure Katib's
    Kubernetes client; knob's reaches knobd instead, as KnobClient does: over `socket_path` (default
    `$KNOB_HOME/knobd.sock`, else `~/.knob/knobd.sock`) or over TCP at `server` with a `token` or `token_file`.
    `namespace` is the namespace experiments are created in (none unless given) and names in messages."""

    def __init__(self, config_file=None, context=None, client_configuration=None, namespace=None, *, socket_path=None,
                 server=None, token=None, token_file=None, home=None):
        for key, value in (("config_file", config_file), ("context", context), ("client_configuration", client_configuration)):
            if value is not None:
                warnings.warn(f"KatibClient(): {key} configures a Kubernetes client; knob's talks to knobd and does "
                              f"not use it", stacklevel=2)
        self.namespace = namespace
        self.knob = KnobClient(socket_path=socket_path, server=server, token=token, token_file=token_file, home=home,
                               timeout=DEFAULT_TIMEOUT)

    # -- experiments ---------------------------------------------------------------------------------------------

    def create_experiment(self, experiment, namespace=None):
        """Creates the experiment, a V1beta1Experiment (this module's or Katib's) or a dict in Katib's shape, and
        starts it. Returns None."""
        namespace = namespace or self.namespace
        if isinstance(experiment, models.KatibModel):
            body = experiment.to_json()
        else:  # a dict, or a model of Katib's own SDK or of the Kubernetes client
            body = kubernetes_json(experiment)
        metadata = dict(body.get("metadata") or {})
        name = metadata.get("name") or metadata.get("generateName") or metadata.get("generate_name")
        if not name:
            raise ValueError("Experiment must have a name or generateName")
        if namespace and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        body["metadata"] = metadata
        self._create(body, name, namespace)

    def get_experiment(self, name, namespace=None, timeout=DEFAULT_TIMEOUT):
        """The experiment as a V1beta1Experiment. Raises RuntimeError when there is none of that name."""
        try:
            view = self.knob.get_experiment(name)
            return V1beta1Experiment.from_json(katib_experiment(view, self._spec(name)))
        except KnobError as error:
            raise RuntimeError(f"Failed to get Katib Experiment: {self._where(name, namespace)}: {error.message}") from error

    def list_experiments(self, namespace=None, timeout=DEFAULT_TIMEOUT):
        """Every experiment, as V1beta1Experiment objects (an empty list when there is none)."""
        try:
            return [V1beta1Experiment.from_json(katib_experiment(view, self._spec(view["name"])))
                    for view in self.knob.list_experiments()]
        except KnobError as error:
            raise RuntimeError(f"Failed to list Katib Experiments in namespace: {self._namespace(namespace)}: "
                               f"{error.message}") from error

    def get_experiment_conditions(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        """The experiment's V1beta1ExperimentCondition list (of `experiment` when given, without asking knobd)."""
        if experiment is None:
            experiment = self.get_experiment(name, namespace, timeout)
        if experiment.status and experiment.status.conditions:
            return experiment.status.conditions
        return []

    def is_experiment_created(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        return _has_condition(self.get_experiment_conditions(name, namespace, experiment, timeout), "Created")

    def is_experiment_running(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        return _has_condition(self.get_experiment_conditions(name, namespace, experiment, timeout), "Running")

    def is_experiment_restarting(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        return _has_condition(self.get_experiment_conditions(name, namespace, experiment, timeout), "Restarting")

    def is_experiment_succeeded(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        return _has_condition(self.get_experiment_conditions(name, namespace, experiment, timeout), "Succeeded")

    def is_experiment_failed(self, name, namespace=None, experiment=None, timeout=DEFAULT_TIMEOUT):
        return _has_condition(self.get_experiment_conditions(name, namespace, experiment, timeout), "Failed")

    def get_experiment_status(self, name, namespace=None):
        """The older SDK's status: the type of the experiment's last condition, e.g. "Running" or "Succeeded"."""
        conditions = self.get_experiment_conditions(name, namespace)
        return conditions[-1].type if conditions else ""

    def wait_for_experiment_condition(self, name, namespace=None, expected_condition="Succeeded", timeout=600,
                                      polling_interval=15, apiserver_timeout=DEFAULT_TIMEOUT):
        """Polls until the experiment has `expected_condition` (Created, Running, Restarting, Succeeded or Failed)
        and returns it, printing its trial counts on each poll as Katib does. Raises RuntimeError when it fails
        (unless Failed is expected) or is stopped, TimeoutError after `timeout` seconds."""
        where = self._where(name, namespace)
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.get_experiment(name, namespace, apiserver_timeout)
            conditions = self.get_experiment_conditions(name, namespace, experiment)
            _print_experiment_status(experiment)
            # Katib's order: a failure ends the wait first, unless Failed is what it waits for.
            if _has_condition(conditions, "Failed") and expected_condition != "Failed":
                raise RuntimeError(f"Experiment: {where} is Failed. Experiment conditions: {conditions}")
            if _has_condition(conditions, expected_condition):
                return experiment
            if _is_stopped(conditions):
                raise RuntimeError(f"Experiment: {where} is Stopped (resume it to go on), not {expected_condition}. "
                                   f"Experiment conditions: {conditions}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Timeout waiting for Experiment: {where} to reach {expected_condition} state")
            time.sleep(min(polling_interval, max(0.0, deadline - time.monotonic())))

    def edit_experiment_budget(self, name, namespace=None, max_trial_count=None, parallel_trial_count=None,
                               max_failed_trial_count=None, timeout=DEFAULT_TIMEOUT):
        """Changes the experiment's budget; a running one applies it at once, and a succeeded one whose
        max_trial_count was raised runs again. Returns None."""
        if max_trial_count is None and parallel_trial_count is None and max_failed_trial_count is None:
            raise ValueError("Invalid input arguments. You have to set max_trial_count, parallel_trial_count, or "
                             "max_failed_trial_count to modify Experiment Trial budget.")
        try:
            edited = self.knob.edit_experiment_budget(name, max_trial_count=max_trial_count,
                                                      parallel_trial_count=parallel_trial_count,
                                                      max_failed_trial_count=max_failed_trial_count)
            if edited["status"] == "Succeeded" and max_trial_count is not None and \
                    sum(edited["trials"].values()) < max_trial_count:
                # Katib resumes a succeeded experiment whose budget grew (resumePolicy LongRunning).
                self.knob.resume_experiment(name)
        except KnobError as error:
            raise RuntimeError(f"Failed to edit Katib Experiment: {self._where(name, namespace)}: {error.message}") from error

    def delete_experiment(self, name, namespace=None, delete_options=None):
        """Deletes the experiment, its trials (running ones are killed) and their logs. Returns None."""
        try:
            self.knob.delete_experiment(name)
        except KnobError as error:
            raise RuntimeError(f"Failed to delete Katib Experiment: {self._where(name, namespace)}: {error.message}") from error

    # -- trials --------------------------------------------------------------------------------------------------

    def get_optimal_hyperparameters(self, name, namespace=None, timeout=DEFAULT_TIMEOUT):
        """The best trial so far as a V1beta1OptimalTrial, or None while no trial has reported the objective. The
        answer also reads as the older SDK's dict: `best["currentOptimalTrial"]["parameterAssignments"]`."""
        experiment = self.get_experiment(name, namespace, timeout)
        optimal = experiment.status and experiment.status.current_optimal_trial
        if optimal and optimal.observation and optimal.observation.metrics:
            return optimal
        return None

    def get_trial(self, name, namespace=None, timeout=DEFAULT_TIMEOUT):
        """The trial named `name` (e.g. "mnist-3") as a V1beta1Trial."""
        try:
            experiment, trial = self._find_trial(name)
            return V1beta1Trial.from_json(katib_trial(trial, experiment, self._spec_document(experiment)))
        except KnobError as error:
            raise RuntimeError(f"Failed to get Katib Trial: {self._where(name, namespace)}: {error.message}") from error

    def list_trials(self, experiment_name=None, namespace=None, timeout=DEFAULT_TIMEOUT):
        """The trials of the experiment (of every experiment without a name), as V1beta1Trial objects."""
        try:
            return [V1beta1Trial.from_json(trial) for trial in self._katib_trials(experiment_name)]
        except KnobError as error:
            raise RuntimeError(f"Failed to list Katib Trials in namespace: {self._namespace(namespace)}: "
                               f"{error.message}") from error

    def get_success_trial_details(self, experiment_name=None, namespace=None, timeout=DEFAULT_TIMEOUT):
        """The succeeded trials as Katib lists them: dicts of `name`, `parameter_assignments` (a list of
        V1beta1ParameterAssignment) and `metrics` (a list of V1beta1Metric)."""
        return [{"name": trial.metadata.name, "parameter_assignments": trial.spec.parameter_assignments,
                 "metrics": trial.status.observation.metrics}
                for trial in self.list_trials(experiment_name, namespace, timeout)
                if trial.status and _has_condition(trial.status.conditions or [], "Succeeded")]

    def get_trial_metrics(self, name, namespace=None, db_manager_address=DEFAULT_DB_MANAGER_ADDRESS,
                          timeout=DEFAULT_TIMEOUT):
        """Every metric report of the trial named `name`, in the order it was read, as Katib's MetricLog objects:
        `.time_stamp`, `.metric.name`, `.metric.value` (the value as text)."""
        try:
            experiment, trial = self._find_trial(name)
            reports = self.knob.get_trial_metrics(experiment, name)
        except KnobError as error:
            raise RuntimeError(f"Unable to get metrics for Trial {self._where(name, namespace)}. "
                               f"Exception: {error.message}") from error
        return [models.MetricLog(time_stamp=report["timestamp"],
                                 metric=models.MetricLogMetric(name=report["name"], value=_report_text(report)))
                for report in reports]

    def get_job_logs(self, name, trial_name, follow=False, namespace=None):
        """Yields the lines the trial wrote; with `follow`, as it writes them, until it ends."""
        if not name:
            raise ValueError("Experiment name is required")
        if not trial_name:
            raise ValueError("Trial name is required")
        path = f"/v1/experiments/{_quote(name)}/trials/{_quote(trial_name)}/logs"
        try:
            if follow:
                yield from self.knob._request_lines(path + "?follow=true")
            else:
                yield from self.knob.get_trial_logs(name, trial_name).splitlines()
        except KnobError as error:
            if error.status == 404:
                raise RuntimeError(f"Trial {trial_name} or associated job not found: {error.message}") from error
            raise RuntimeError(f"Failed to get job logs: {error.message}") from error

    # -- tune ----------------------------------------------------------------------------------------------------

    def tune(self, name, model_provider_parameters=None, dataset_provider_parameters=None, trainer_parameters=None,
             storage_config=None, objective=None, base_image=BASE_IMAGE_PYTORCH, parameters=None, namespace=None,
             env_per_trial=None, algorithm_name="random", algorithm_settings=None, objective_metric_name=None,
             additional_metric_names=(), objective_type="maximize", objective_goal=None, max_trial_count=None,
             parallel_trial_count=None, max_failed_trial_count=None, resources_per_trial=None, retain_trials=False,
             packages_to_install=None, pip_index_urls=("https://pypi.org/simple",),
             metrics_collector_config=None, trial_active_deadline_seconds=None):
        """Creates an experiment that tunes `objective`, a self-contained function (imports inside) that takes a
        dict of parameters and prints its metrics as `name=value`. Values of `parameters` made with
        `search.double/int/categorical` are searched; the others are passed as they are. Returns None."""
        if model_provider_parameters is not None or dataset_provider_parameters is not None or \
                trainer_parameters is not None:
            raise ValueError("tune(): knob tunes an objective function; model_provider_parameters, "
                             "dataset_provider_parameters and trainer_parameters (Katib's LLM tuning) are not supported")
        if objective is None or not parameters:
            raise ValueError("tune(): objective and parameters are required")
        if not name:
            raise ValueError("Please specify name for the Experiment.")
        collector = (metrics_collector_config or {}).get("kind", "StdOut")
        collector = {"stdout": "StdOut", "push": "Push"}.get(str(collector).lower(), collector)
        if collector not in ("StdOut", "Push"):
            raise ValueError(f"tune(): metrics_collector_config kind {collector!r} is not supported; use StdOut (the "
                             f"objective's report_metrics prints its metrics) or Push (report_metrics sends them to knob)")
        if isinstance(algorithm_settings, (list, tuple)):
            algorithm_settings = {_field(setting, "name"): _field(setting, "value") for setting in algorithm_settings}
        cluster = self._cluster()
        if cluster.get("configured"):
            # As Katib: a Job whose container runs the objective in base_image, on the cluster knobd runs trials on.
            template = katib_job.job_trial_template(
                objective, parameters, base_image, resources_per_trial=resources_per_trial, env_per_trial=env_per_trial,
                retain_trials=retain_trials, packages_to_install=packages_to_install,
                pip_index_urls=pip_index_urls, trial_active_deadline_seconds=trial_active_deadline_seconds)
            spec = experiment_document(
                name, searched_parameters(parameters, objective_metric_name), template, algorithm_name=algorithm_name, algorithm_settings=algorithm_settings,
                objective_metric_name=objective_metric_name, additional_metric_names=additional_metric_names,
                objective_type=objective_type, objective_goal=objective_goal, max_trial_count=max_trial_count,
                parallel_trial_count=parallel_trial_count, max_failed_trial_count=max_failed_trial_count)
            directory = None
        else:
            given = {"base_image": base_image, "namespace": namespace, "resources_per_trial": resources_per_trial,
                     "packages_to_install": packages_to_install, "pip_index_urls": list(pip_index_urls or []) or None,
                     "trial_active_deadline_seconds": trial_active_deadline_seconds, "storage_config": storage_config}
            # A Katib trial always runs in an image (the PyTorch one by default); the others count when given.
            unused = [key for key, value in given.items()
                      if key == "base_image" or value is not None and value != _CONTAINER_ARGUMENTS[key]]
            warnings.warn("tune(): knobd has no Kubernetes cluster, so these trials run as local processes with this "
                          "Python" + (f"; not used, as they describe a trial's container: {', '.join(unused)}" if unused else ""),
                          stacklevel=2)
            if env_per_trial is not None and not isinstance(env_per_trial, dict):
                env_per_trial = {_field(variable, "name"): _field(variable, "value") for variable in env_per_trial}
            spec, directory = self.knob._function_experiment(
                name, objective, parameters, algorithm_name=algorithm_name, algorithm_settings=algorithm_settings,
                objective_metric_name=objective_metric_name, additional_metric_names=additional_metric_names,
                objective_type=objective_type, objective_goal=objective_goal, max_trial_count=max_trial_count,
                parallel_trial_count=parallel_trial_count, max_failed_trial_count=max_failed_trial_count,
                env_per_trial=env_per_trial, retain_trials=retain_trials, typed_parameters=False)
        if collector == "Push":
            spec["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
        namespace = namespace or self.namespace
        if namespace:
            spec["metadata"]["namespace"] = namespace
        self._create(spec, name, namespace, directory)

    # -- helpers -------------------------------------------------------------------------------------------------

    def _create(self, body, name, namespace, directory=None):
        """Creates the experiment; a taken name raises Exception and any other refusal RuntimeError, as in Katib."""
        try:
            self.knob.create_experiment(body, directory=directory)
        except KnobError as error:
            if error.status == 409:
                raise Exception(f"A Katib Experiment with the name {self._where(name, namespace)} already exists.") from error
            raise RuntimeError(f"Failed to create Katib Experiment: {self._where(name, namespace)}: {error.message}") from error

    def _cluster(self):
        """knobd's answer on its Kubernetes cluster; an older knobd without the route has none."""
        try:
            return self.knob._request("GET", "/v1/cluster")
        except KnobError as error:
            if error.status == 404:
                return {"configured": False}
            raise

    def _namespace(self, namespace):
        return namespace or self.namespace or "default"

    def _where(self, name, namespace):
        return f"{self._namespace(namespace)}/{name}"

    def _spec(self, name):
        return self.knob._request("GET", f"/v1/experiments/{_quote(name)}/spec", raw=True)

    def _spec_document(self, name):
        return parse_spec(self._spec(name))

    def _find_trial(self, trial_name):
        """(experiment name, knob's trial) for a trial name: knob names trials EXPERIMENT-N."""
        guess = trial_name.rsplit("-", 1)[0]
        try:
            return guess, self.knob.get_trial(guess, trial_name)
        except KnobError as error:
            if error.status != 404:
                raise
        for view in self.knob.list_experiments():
            for trial in self.knob.list_trials(view["name"]):
                if trial["name"] == trial_name:
                    return view["name"], trial
        raise KnobError(404, "NotFound", f"no trial named {trial_name}")

    def _katib_trials(self, experiment_name):
        names = [experiment_name] if experiment_name else [view["name"] for view in self.knob.list_experiments()]
        for name in names:
            document = self._spec_document(name)
            for trial in self.knob.list_trials(name):
                yield katib_trial(trial, name, document)


# -- knob's answers as Katib's objects -----------------------------------------------------------------------------

def katib_experiment(view, spec_text):
    """Katib's Experiment object (JSON) for knobd's view of an experiment and the spec it was given, as `knob get
    NAME -o json` builds it: the metadata and spec as given, budget edits applied, and Katib's status."""
    document = parse_spec(spec_text) or {}
    metadata = {key: value for key, value in (document.get("metadata") or {"name": view["name"]}).items()
                if key != "creationTimestamp"}
    metadata["creationTimestamp"] = view["createdAt"]
    spec = document.get("spec")
    if spec is None:
        spec = _spec_from_view(view)
    count = view.get("trials") or {}
    status = {
        "conditions": experiment_conditions(view),
        "currentOptimalTrial": view["currentOptimalTrial"],
        "trials": sum(count.values()),
        "trialsSucceeded": count.get("Succeeded", 0),
        "trialsFailed": count.get("Failed", 0),
        "trialsKilled": count.get("Killed", 0),
        "trialsPending": count.get("Pending", 0),
        "trialsRunning": count.get("Running", 0),
        "trialsEarlyStopped": count.get("EarlyStopped", 0),
        "trialMetricsUnavailable": count.get("MetricsUnavailable", 0),
    }
    if view.get("startedAt"):
        status["startTime"] = view["startedAt"]
    if view.get("completedAt"):
        status["completionTime"] = view["completedAt"]
    return {"apiVersion": API_VERSION, "kind": "Experiment", "metadata": metadata,
            "spec": with_budget(spec, view["budget"]), "status": status}


def with_budget(spec, budget):
    """The spec as given, with the budget as it is now where an edit changed it (knob's default parallelism is 3)."""
    spec = dict(spec)
    for key, default in (("maxTrialCount", None), ("parallelTrialCount", 3), ("maxFailedTrialCount", None)):
        was = spec.get(key, default)
        now = budget.get(key)
        if now == (int(was) if was is not None else None):
            continue
        if now is None:
            spec.pop(key, None)
        else:
            spec[key] = now
    return spec


def experiment_conditions(view):
    """Katib's conditions for knob's status: Created, then Running (False once it ended), then Succeeded or Failed;
    a stopped experiment has Running False with the stop's reason."""
    created = view["createdAt"]
    conditions = [_condition("Created", "True", "ExperimentCreated", "Experiment is created", created)]
    started = view.get("startedAt")
    if not started:
        return conditions
    reason = katib_reason(view["reason"])
    if view["status"] in ("Succeeded", "Failed", "Stopped"):
        ended = view.get("completedAt") or started
        conditions.append(_condition("Running", "False", reason, view["message"], ended))
        if view["status"] != "Stopped":
            conditions.append(_condition(view["status"], "True", reason, view["message"], ended))
    else:
        conditions.append(_condition("Running", "True", "ExperimentRunning", view["message"], started))
    return conditions


def katib_reason(reason):
    """Katib's name for knob's reason: MaxTrialsReached → ExperimentMaxTrialsReached, SearchSpaceExhausted →
    ExperimentSuggestionEndReached."""
    if reason == "SearchSpaceExhausted":
        return "ExperimentSuggestionEndReached"
    return reason if reason.startswith("Experiment") else "Experiment" + reason


def katib_trial(trial, experiment, document):
    """Katib's Trial object (JSON) for knobd's trial of `experiment`, whose spec (parsed, or None) gives the
    objective, the namespace and the primary container."""
    document = document or {}
    spec = document.get("spec") or {}
    template = spec.get("trialTemplate") or {}
    metadata = {"name": trial["name"], "creationTimestamp": trial["createdAt"], "labels": {EXPERIMENT_LABEL: experiment}}
    namespace = (document.get("metadata") or {}).get("namespace")
    if namespace:
        metadata["namespace"] = namespace
    trial_spec = {"parameterAssignments": trial["assignments"], "retainRun": bool(template.get("retain", False))}
    if spec.get("objective"):
        trial_spec["objective"] = spec["objective"]
    if template.get("primaryContainerName"):
        trial_spec["primaryContainerName"] = template["primaryContainerName"]
    status = {"conditions": trial_conditions(trial),
              "observation": {"metrics": [{"name": metric["name"], "min": _number_text(metric["min"]),
                                           "max": _number_text(metric["max"]), "latest": _number_text(metric["latest"])}
                                          for metric in trial.get("observation") or []]}}
    if trial.get("startedAt"):
        status["startTime"] = trial["startedAt"]
    if trial.get("completedAt"):
        status["completionTime"] = trial["completedAt"]
    return {"apiVersion": API_VERSION, "kind": "Trial", "metadata": metadata, "spec": trial_spec, "status": status}


def trial_conditions(trial):
    """Katib's conditions for knob's trial state: Created, Running once it started (False once it ended), then
    the state it ended in (Succeeded, Failed, Killed, EarlyStopped or MetricsUnavailable) with knob's reason."""
    conditions = [_condition("Created", "True", "TrialCreated", "Trial is created", trial["createdAt"])]
    started = trial.get("startedAt")
    ended = trial["state"] in _TRIAL_ENDS
    if started:
        conditions.append(_condition("Running", "False" if ended else "True", "TrialRunning", "Trial is running",
                                     trial.get("completedAt") if ended and trial.get("completedAt") else started))
    if ended:
        moment = trial.get("completedAt") or started or trial["createdAt"]
        conditions.append(_condition(trial["state"], "True", trial["reason"] or "Trial" + trial["state"],
                                     trial["message"], moment))
    return conditions


def parse_spec(text):
    """The spec document knobd was given (JSON, or the YAML subset of `knob_client.yaml_subset`), or None."""
    from .spec_text import parse
    try:
        document = parse(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _spec_from_view(view):
    kind, _, metric = view.get("objective", "").partition(" ")
    return {"objective": {"type": kind, "objectiveMetricName": metric}, "algorithm": {"algorithmName": view["algorithm"]}}


def _condition(kind, status, reason, message, moment):
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": moment, "lastTransitionTime": moment}


def _has_condition(conditions, kind):
    return any(condition.type == kind and condition.status == "True" for condition in conditions)


def _is_stopped(conditions):
    """Whether the conditions are those of a stopped experiment: no longer running, neither succeeded nor failed."""
    kinds = {condition.type: condition.status for condition in conditions}
    return kinds.get("Running") == "False" and "Succeeded" not in kinds and "Failed" not in kinds


def _print_experiment_status(experiment):
    status = experiment.status
    if status:
        print(f"Experiment Trials status: {status.trials or 0} Trials, {status.trials_pending or 0} Pending Trials, "
              f"{status.trials_running or 0} Running Trials, {status.trials_succeeded or 0} Succeeded Trials, "
              f"{status.trials_failed or 0} Failed Trials, {status.trials_early_stopped or 0} EarlyStopped Trials, "
              f"{status.trial_metrics_unavailable or 0} MetricsUnavailable Trials")
        print(f"Current Optimal Trial:\n {status.current_optimal_trial}")
        print(f"Experiment conditions:\n {status.conditions}")


def _number_text(value):
    return repr(value) if isinstance(value, float) else str(value)


def _report_text(report):
    return _number_text(report["value"]) if report.get("value") is not None else report.get("text", "")


def _field(item, key):
    """`item.key`, or `item[key]` for a dict: a V1EnvVar or AlgorithmSetting either way."""
    return item[key] if isinstance(item, dict) else getattr(item, key)


def _quote(name):
    return urllib.parse.quote(name, safe="")
