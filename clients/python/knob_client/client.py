"""KnobClient: knobd's HTTP/JSON API over its Unix socket or TCP, with Katib's SDK method names."""

import http.client
import inspect
import json
import numbers
import os
import socket
import sys
import textwrap
import time
import urllib.parse
import warnings

from . import search

# Katib tune() arguments that only mean something on Kubernetes.
_KUBERNETES_ONLY = ("base_image", "namespace", "resources_per_trial", "packages_to_install", "pip_index_url",
                    "metrics_collector_config", "storage_config", "trial_parameters")


class KnobError(Exception):
    """knobd answered with an error; `status`, `code` and `message` are its words."""

    def __init__(self, status, code, message, problems=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []


def _error(status, body):
    """The KnobError for an error answer: its `{"error": {...}}` body, else the body's text."""
    try:
        error = json.loads(body)["error"]
        return KnobError(status, error.get("code", ""), error.get("message", ""), error.get("problems"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return KnobError(status, "", body.decode(errors="replace"))


def report_metrics(metrics, db_manager_address=None, timeout=120):
    """Reports a trial's metrics (name → number, or a number's text), as Katib's `report_metrics` does.

    In a trial of an experiment whose metrics collector is Push, the report is sent to knob's API, at
    `KNOB_PUSH_URL` (`unix:///path/knobd.sock` or `http://host:port`) with the trial's `KNOB_PUSH_TOKEN`; a
    `step` entry (a whole number) is the report's step. In a trial of another experiment it is printed in knob's
    default format (`name=value`, one line) for the scraper to read. `db_manager_address` (Katib's DB manager) is
    not used. While nothing listens at `KNOB_PUSH_URL` (knob restarting), the report is tried again until `timeout`
    seconds have passed. Raises ValueError for a value that is no number, KnobError when knob refuses the report or
    does not answer, and RuntimeError outside a trial."""
    push_url, token = os.environ.get("KNOB_PUSH_URL"), os.environ.get("KNOB_PUSH_TOKEN")
    experiment, trial = os.environ.get("KNOB_EXPERIMENT"), os.environ.get("KNOB_TRIAL")
    if not push_url:
        if not trial:
            raise RuntimeError("report_metrics() reports a trial's metrics, and this process is no knob trial "
                               "(KNOB_TRIAL and KNOB_PUSH_URL are not set; knob sets them in each trial it runs)")
        print(" - ".join(f"{name}={value}" for name, value in metrics.items()), flush=True)
        return
    if not (token and experiment and trial):
        raise RuntimeError("report_metrics(): KNOB_PUSH_URL is set but KNOB_PUSH_TOKEN, KNOB_EXPERIMENT or KNOB_TRIAL "
                           "is not; knob sets all four in each trial of a Push experiment")
    body = {}
    for name, value in metrics.items():
        if name in ("step", "timestamp"):
            # NumPy's integers and floats are no JSON: a whole step goes as an int, a time as a float or text.
            if name == "step" and not isinstance(value, bool) and hasattr(value, "__index__"):
                value = int(value)
            elif name == "timestamp" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = float(value)
            body[name] = value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"report_metrics(): metric {name} has the value {value!r}, which is no number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"report_metrics(): metric {name} has the value {value!r}, which is no finite number")
        body[name] = number
    url = urllib.parse.urlsplit(push_url)
    if url.scheme == "unix":
        def connect():
            return _UnixConnection(url.path, timeout)
        prefix = ""
    elif url.scheme in ("http", "https"):
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection

        def connect():
            return kind(url.hostname, url.port, timeout=timeout)
        prefix = url.path.rstrip("/")
    else:
        raise RuntimeError(f"report_metrics(): KNOB_PUSH_URL {push_url!r} is neither unix:///PATH nor http(s)://HOST:PORT")
    path = (f"{prefix}/v1/experiments/{urllib.parse.quote(experiment, safe='')}"
            f"/trials/{urllib.parse.quote(trial, safe='')}/metrics")
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {token}"}
    payload = json.dumps(body).encode()
    # While knob restarts nothing listens: the report, not yet delivered, is sent again until `timeout` has passed.
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        connection = connect()
        try:
            connection.connect()
        except (FileNotFoundError, ConnectionRefusedError) as error:
            connection.close()
            if time.monotonic() + delay > deadline:
                raise KnobError(0, "Unreachable", f"report_metrics(): knob does not answer at {push_url} ({error})") from error
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        except OSError as error:
            connection.close()
            raise KnobError(0, "Unreachable", f"report_metrics(): knob does not answer at {push_url} ({error})") from error
        try:
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError as error:
            raise KnobError(0, "Unreachable", f"report_metrics(): the report to {push_url} was cut off ({error})") from error
        finally:
            connection.close()
        break
    if response.status >= 400:
        raise _error(response.status, data)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class KnobClient:
    """Talks to knobd: over `socket_path` (default `$KNOB_HOME/knobd.sock`, else `~/.knob/knobd.sock`), or over TCP
    at `server` (e.g. "http://10.0.0.5:8123") with a bearer `token` or `token_file`."""

    def __init__(self, socket_path=None, server=None, token=None, token_file=None, home=None, timeout=60):
        self.home = os.path.abspath(os.path.expanduser(home or os.environ.get("KNOB_HOME") or "~/.knob"))
        self.server = server
        self.socket_path = socket_path or os.path.join(self.home, "knobd.sock")
        if token_file:
            with open(token_file) as f:
                token = f.readline().strip()
        self.token = token
        self.timeout = timeout

    # -- transport -----------------------------------------------------------------------------------------------

    def _connection(self):
        if self.server:
            url = urllib.parse.urlsplit(self.server)
            kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            return kind(url.hostname, url.port, timeout=self.timeout)
        return _UnixConnection(self.socket_path, self.timeout)

    def _request(self, method, path, body=None, content_type="application/json", raw=False, binary=False):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
            if isinstance(body, str):
                body = body.encode()
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = self._connection()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (FileNotFoundError, ConnectionRefusedError) as error:
            where = self.server or self.socket_path
            raise KnobError(0, "Unreachable", f"no knobd answers at {where} ({error}); start it with `knobd`") from error
        finally:
            connection.close()
        if response.status >= 400:
            raise _error(response.status, data)
        if binary:
            return data
        if raw:
            return data.decode(errors="replace")
        return json.loads(data) if data else None

    def _request_lines(self, path):
        """GETs `path` and yields its text line by line as it arrives (for a response that streams, as a followed
        log does), without line ends."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connection = self._connection()
        try:
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
            except (FileNotFoundError, ConnectionRefusedError) as error:
                where = self.server or self.socket_path
                raise KnobError(0, "Unreachable", f"no knobd answers at {where} ({error}); start it with `knobd`") from error
            if response.status >= 400:
                raise _error(response.status, response.read())
            for line in response:
                yield line.decode(errors="replace").rstrip("\r\n")
        finally:
            connection.close()

    @staticmethod
    def _quote(name):
        return urllib.parse.quote(name, safe="")

    # -- experiments ---------------------------------------------------------------------------------------------

    def create_experiment(self, experiment, directory=None):
        """Submits an Experiment: a dict (Katib's kubeflow.org/v1beta1 shape) or the path of a YAML/JSON spec file.
        Relative paths of its trial template resolve against `directory` (for a file: the file's folder)."""
        if isinstance(experiment, (str, os.PathLike)):
            path = os.path.abspath(os.fspath(experiment))
            with open(path) as f:
                body = f.read()
            directory = directory or os.path.dirname(path)
            content_type = "application/yaml"
        else:
            body = json.dumps(experiment)
            content_type = "application/json"
        query = f"?directory={urllib.parse.quote(os.path.abspath(directory))}" if directory else ""
        return self._request("POST", f"/v1/experiments{query}", body, content_type)

    def get_experiment(self, name):
        return self._request("GET", f"/v1/experiments/{self._quote(name)}")

    def list_experiments(self):
        return self._request("GET", "/v1/experiments")

    def list_trials(self, name):
        return self._request("GET", f"/v1/experiments/{self._quote(name)}/trials")

    def get_trial(self, name, trial):
        return self._request("GET", f"/v1/experiments/{self._quote(name)}/trials/{self._quote(trial)}")

    def get_trial_metrics(self, name, trial):
        return self._request("GET", f"/v1/experiments/{self._quote(name)}/trials/{self._quote(trial)}/metrics")

    def get_trial_logs(self, name, trial, follow=False):
        """The trial's output; with `follow`, waits until the trial ends."""
        suffix = "?follow=true" if follow else ""
        return self._request("GET", f"/v1/experiments/{self._quote(name)}/trials/{self._quote(trial)}/logs{suffix}", raw=True)

    def list_artifacts(self, name, trial):
        """The files a trial saved in its artifacts directory ($KNOB_ARTIFACTS_DIR): [{"path", "size"}]."""
        return self._request("GET", f"/v1/experiments/{self._quote(name)}/trials/{self._quote(trial)}/artifacts")

    def download_artifacts(self, name, trial=None, directory="."):
        """Downloads a trial's artifacts, the best trial's when `trial` is None (as `knob artifacts NAME --best -o
        DIRECTORY`), into `directory`, keeping their folders. Returns the paths written."""
        if trial is None:
            trial = ((self.get_optimal_hyperparameters(name) or {}).get("currentOptimalTrial") or {}).get("bestTrialName")
            if not trial:
                raise KnobError(404, "NotFound", f"experiment {name} has no best trial yet")
        written = []
        root = os.path.abspath(directory)
        for entry in self.list_artifacts(name, trial):
            target = os.path.abspath(os.path.join(root, entry["path"]))
            if os.path.commonpath([root, target]) != root:
                raise KnobError(0, "BadArtifact", f"artifact path {entry['path']!r} leaves {directory}")
            remote = "/".join(self._quote(part) for part in entry["path"].split("/"))
            data = self._request("GET", f"/v1/experiments/{self._quote(name)}/trials/{self._quote(trial)}/artifacts/{remote}",
                                 binary=True)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
            written.append(target)
        return written

    def get_optimal_hyperparameters(self, name):
        """Katib's shape, `{"currentOptimalTrial": {...}}`, or None while no trial has reported the objective."""
        result = self._request("GET", f"/v1/experiments/{self._quote(name)}/optimal")
        if not result["currentOptimalTrial"]["bestTrialName"]:
            return None
        return result

    def is_experiment_succeeded(self, name):
        return self.get_experiment(name)["status"] == "Succeeded"

    def is_experiment_failed(self, name):
        return self.get_experiment(name)["status"] == "Failed"

    def is_experiment_running(self, name):
        return self.get_experiment(name)["status"] in ("Created", "Running")

    def wait_for_experiment_condition(self, name, expected_condition="Succeeded", timeout=600, polling_interval=15):
        """Polls until the experiment's status is `expected_condition` (Created, Running, Succeeded, Failed, Stopped)
        and returns it. Raises RuntimeError when it ends otherwise, TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.get_experiment(name)
            status = experiment["status"]
            if status == expected_condition:
                return experiment
            if status in ("Succeeded", "Failed", "Stopped"):
                raise RuntimeError(f"experiment {name} ended {status} ({experiment['reason']}: {experiment['message']}), "
                                   f"not {expected_condition}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"experiment {name} is still {status} after {timeout} s")
            time.sleep(min(polling_interval, max(0.0, deadline - time.monotonic())))

    def edit_experiment_budget(self, name, max_trial_count=None, parallel_trial_count=None, max_failed_trial_count=None):
        """Changes the budget; a running experiment applies it at once."""
        patch = {key: value for key, value in (("maxTrialCount", max_trial_count), ("parallelTrialCount", parallel_trial_count),
                                               ("maxFailedTrialCount", max_failed_trial_count)) if value is not None}
        return self._request("PATCH", f"/v1/experiments/{self._quote(name)}", json.dumps(patch))

    def stop_experiment(self, name):
        return self._request("POST", f"/v1/experiments/{self._quote(name)}/stop")

    def resume_experiment(self, name):
        return self._request("POST", f"/v1/experiments/{self._quote(name)}/resume")

    def delete_experiment(self, name):
        self._request("DELETE", f"/v1/experiments/{self._quote(name)}")

    # -- tune ----------------------------------------------------------------------------------------------------

    def tune(self, name, objective, parameters, algorithm_name="random", algorithm_settings=None,
             objective_metric_name=None, additional_metric_names=None, objective_type="maximize", objective_goal=None,
             max_trial_count=None, parallel_trial_count=None, max_failed_trial_count=None, env_per_trial=None,
             retain_trials=False, **kubernetes_only):
        """Tunes `objective`, a self-contained function (imports inside, as Katib requires) that takes a dict of
        parameters and prints its metrics as `name=value` lines (or calls `report_metrics`). Values of `parameters`
        made with `search.double/int/categorical` are searched; others are passed as they are. Returns the
        experiment as knobd created it."""
        for key in kubernetes_only:
            if key not in _KUBERNETES_ONLY:
                raise TypeError(f"tune() got an unexpected keyword argument {key!r}")
            warnings.warn(f"tune(): {key} applies to Kubernetes trials only and is ignored for local trials", stacklevel=2)
        spec, directory = self._function_experiment(
            name, objective, parameters, algorithm_name=algorithm_name, algorithm_settings=algorithm_settings,
            objective_metric_name=objective_metric_name, additional_metric_names=additional_metric_names,
            objective_type=objective_type, objective_goal=objective_goal, max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count, max_failed_trial_count=max_failed_trial_count,
            env_per_trial=env_per_trial, retain_trials=retain_trials)
        return self.create_experiment(spec, directory=directory)

    def _function_experiment(self, name, objective, parameters, algorithm_name, algorithm_settings, objective_metric_name,
                             additional_metric_names, objective_type, objective_goal, max_trial_count,
                             parallel_trial_count, max_failed_trial_count, env_per_trial, retain_trials,
                             typed_parameters=True):
        """The Experiment that runs `objective` as local trials, and the folder its files were written to (None
        when the program travels in the command). With `typed_parameters` False the objective gets each searched
        value as the text of the assignment, as Katib's tune() passes it; else as a float, an int or a string."""
        if not callable(objective):
            raise TypeError("objective must be a function that takes a dict of parameters")
        searched = searched_parameters(parameters, objective_metric_name)
        fixed = {key: value for key, value in parameters.items() if not search.is_parameter(value)}
        source = textwrap.dedent(inspect.getsource(objective))
        kinds = {key: value["parameterType"] if typed_parameters else "text" for key, value in searched.items()}
        runner = _RUNNER.format(function=objective.__name__, fixed=repr(json.dumps(fixed)), types=repr(json.dumps(kinds)))
        arguments = [f"--{key}=${{trialParameters.{_trial_parameter(key)}}}" for key in searched]

        directory = None
        if self.server:
            # A remote daemon cannot read our files: the program travels in the command itself.
            command = ["python3", "-c", source + "\n" + runner.replace("from objective import", "# from objective import")] + arguments
        else:
            directory = os.path.join(self.home, "functions", name)
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "objective.py"), "w") as f:
                f.write(source)
            with open(os.path.join(directory, "run_trial.py"), "w") as f:
                f.write(runner)
            command = [sys.executable or "python3", "run_trial.py"] + arguments

        template = {
            "retain": bool(retain_trials),
            "trialParameters": [{"name": _trial_parameter(key), "reference": key} for key in searched],
            "command": command,
            "env": {key: str(value) for key, value in (env_per_trial or {}).items()},
        }
        spec = experiment_document(name, searched, template, algorithm_name=algorithm_name,
                                   algorithm_settings=algorithm_settings, objective_metric_name=objective_metric_name,
                                   additional_metric_names=additional_metric_names, objective_type=objective_type,
                                   objective_goal=objective_goal, max_trial_count=max_trial_count,
                                   parallel_trial_count=parallel_trial_count,
                                   max_failed_trial_count=max_failed_trial_count)
        return spec, directory


def searched_parameters(parameters, objective_metric_name):
    """The searched ones of a tune() call's `parameters` (name → search.double/int/categorical); refuses a call
    that searches nothing or names no objective metric."""
    if not objective_metric_name:
        raise ValueError("objective_metric_name is required: the metric the objective prints as name=value")
    searched = {key: value for key, value in parameters.items() if search.is_parameter(value)}
    if not searched:
        raise ValueError("parameters needs at least one search.double, search.int or search.categorical")
    return searched


def experiment_document(name, searched, trial_template, algorithm_name, algorithm_settings, objective_metric_name,
                        additional_metric_names, objective_type, objective_goal, max_trial_count, parallel_trial_count,
                        max_failed_trial_count):
    """The Experiment (as JSON) that searches `searched` (name → search.double/int/categorical) with the algorithm
    and budget given, each trial made from `trial_template`."""
    spec = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": objective_type, "objectiveMetricName": objective_metric_name,
                          "additionalMetricNames": list(additional_metric_names or [])},
            "algorithm": {"algorithmName": algorithm_name,
                          "algorithmSettings": [{"name": k, "value": str(v)} for k, v in (algorithm_settings or {}).items()]},
            "parameters": [{"name": key, "parameterType": value["parameterType"], "feasibleSpace": value["feasibleSpace"]}
                           for key, value in searched.items()],
            "trialTemplate": trial_template,
        },
    }
    if objective_goal is not None:
        spec["spec"]["objective"]["goal"] = objective_goal
    for key, value in (("maxTrialCount", max_trial_count), ("parallelTrialCount", parallel_trial_count),
                       ("maxFailedTrialCount", max_failed_trial_count)):
        if value is not None:
            spec["spec"][key] = value
    return spec


def _trial_parameter(key):
    """A trial-parameter name for a search parameter (letters, digits and _ only)."""
    return "".join(c if c.isalnum() else "_" for c in key)


_RUNNER = '''\
# Runs one trial of a knob tune() experiment: calls the objective with the trial's parameters.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else ".")
from objective import {function}

FIXED = json.loads({fixed})
TYPES = json.loads({types})


def convert(value, kind):
    if kind == "double":
        return float(value)
    if kind == "int":
        return int(value)
    return value  # categorical, or "text": as the assignment's text


parameters = dict(FIXED)
for argument in sys.argv[1:]:
    key, _, value = argument[2:].partition("=")
    parameters[key] = convert(value, TYPES[key])
{function}(parameters)
'''
