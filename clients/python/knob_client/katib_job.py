"""The Kubernetes Job trial template that Katib's tune() builds for an objective function, as JSON.

Katib's SDK turns `tune(objective=f, parameters=..., base_image=...)` into a trialTemplate whose trialSpec is a
batch/v1 Job: one container, `training-container`, runs `bash -c SCRIPT` in `base_image`, where SCRIPT
pip-installs `packages_to_install` (when given), writes the objective's source followed by a call with the
parameters (each searched one as `'${trialParameters.NAME}'`, fixed ones as Python literals) to a temporary file
and runs it with `python -u`. `resources_per_trial` given as {cpu, memory, gpu} becomes equal requests and
limits (gpu as nvidia.com/gpu), `env_per_trial` the container's env, `trial_active_deadline_seconds` the Job's
activeDeadlineSeconds; the pod template opts out of Istio sidecar injection and never restarts.

These functions only build the template; nothing here talks to a cluster.
"""

import inspect
import textwrap

from . import search

PRIMARY_CONTAINER_NAME = "training-container"
ENTRYPOINT_PYTHON = "python -u"
DEFAULT_PIP_INDEX_URLS = ("https://pypi.org/simple",)
ISTIO_SIDECAR_INJECTION = "sidecar.istio.io/inject"


def trial_parameters(parameters):
    """Katib's trialParameters for the searched parameters: each named after, and referring to, its parameter."""
    return [{"name": key, "reference": key} for key, value in parameters.items() if search.is_parameter(value)]


def function_arguments(parameters):
    """The dict the objective is called with in a trial: searched values as their trial-parameter placeholders
    (text, as Katib passes them), fixed values as given."""
    return {key: f"${{trialParameters.{key}}}" if search.is_parameter(value) else value
            for key, value in parameters.items()}


def pip_install_script(packages_to_install, pip_index_urls=DEFAULT_PIP_INDEX_URLS):
    """The shell lines that install the packages with pip (bootstrapping pip when the image lacks it), from the
    first index URL and the others as extra indexes."""
    urls = list(pip_index_urls or DEFAULT_PIP_INDEX_URLS)
    indexes = " ".join([f"--index-url {urls[0]}"] + [f"--extra-index-url {url}" for url in urls[1:]])
    packages = " ".join(str(package) for package in packages_to_install)
    return ("\n"
            'if ! [ -x "$(command -v pip)" ]; then\n'
            "    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\n"
            "fi\n"
            "\n"
            "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --prefer-binary --quiet "
            f"        --no-warn-script-location {indexes} {packages}\n")


def objective_script(objective, parameters, packages_to_install=None, pip_index_urls=DEFAULT_PIP_INDEX_URLS,
                     entrypoint=ENTRYPOINT_PYTHON):
    """The `bash -c` script of a trial: writes the objective and its call to a file and runs it."""
    if not callable(objective):
        raise ValueError(f"Objective function must be callable, got function type: {type(objective)}")
    try:
        inspect.signature(objective).bind({})
    except TypeError:
        raise ValueError("Invalid args in the Objective function. The function args must have only 'parameters' "
                         f"dictionary. Current Objective arguments: {inspect.signature(objective)}") from None
    program = f"{textwrap.dedent(inspect.getsource(objective))}\n{objective.__name__}({function_arguments(parameters)})\n"
    script = ("\n"
              "program_path=$(mktemp -d)\n"
              "read -r -d '' SCRIPT << EOM\n"
              "\n"
              f"{program}\n"
              "EOM\n"
              'printf "%s" "$SCRIPT" > "$program_path/ephemeral_script.py"\n'
              f'{entrypoint} "$program_path/ephemeral_script.py"')
    if packages_to_install is not None:
        script = pip_install_script(packages_to_install, pip_index_urls) + script
    return script


def container_resources(resources_per_trial):
    """The container's resources: {cpu, memory, gpu} (any case) as equal requests and limits, gpu as
    nvidia.com/gpu; an object with `requests`/`limits` (Kubernetes' V1ResourceRequirements) as it is."""
    if resources_per_trial is None:
        return None
    if isinstance(resources_per_trial, dict):
        resources = {str(key).lower(): value for key, value in resources_per_trial.items()}
        if "gpu" in resources:
            resources["nvidia.com/gpu"] = resources.pop("gpu")
        return {"requests": dict(resources), "limits": dict(resources)}
    if hasattr(resources_per_trial, "requests") or hasattr(resources_per_trial, "limits"):
        return kubernetes_json(resources_per_trial)
    raise ValueError(f"resources_per_trial must be a dict of cpu, memory and gpu, or a V1ResourceRequirements, "
                     f"not {type(resources_per_trial).__name__}")


def container_env(env_per_trial):
    """(env, envFrom) of the container: a dict becomes name/value pairs; a list holds env variables (with a
    name) and env sources (a configMapRef or secretRef), as dicts or as Kubernetes' V1EnvVar/V1EnvFromSource."""
    if not env_per_trial:
        return None, None
    if isinstance(env_per_trial, dict):
        return [{"name": str(key), "value": str(value)} for key, value in env_per_trial.items()], None
    env, env_from = [], []
    for item in env_per_trial:
        fields = kubernetes_json(item)
        if not isinstance(fields, dict):
            raise ValueError(f"Incorrect value for env_per_trial: {env_per_trial}")
        if fields.get("name"):
            env.append(fields)
        elif fields.get("configMapRef") or fields.get("secretRef"):
            env_from.append(fields)
        else:
            raise ValueError(f"Incorrect value for env_per_trial: {env_per_trial}")
    return env or None, env_from or None


def kubernetes_json(value):
    """A Kubernetes client object (one with `attribute_map`) as its JSON, camelCase keys and no unset fields;
    lists and dicts of them likewise; anything else as it is."""
    if hasattr(value, "attribute_map") and hasattr(value, "openapi_types"):
        return {value.attribute_map[key]: kubernetes_json(getattr(value, key)) for key in value.openapi_types
                if getattr(value, key) is not None}
    if isinstance(value, (list, tuple)):
        return [kubernetes_json(item) for item in value]
    if isinstance(value, dict):
        return {key: kubernetes_json(item) for key, item in value.items()}
    return value


def job_trial_template(objective, parameters, base_image, resources_per_trial=None, env_per_trial=None,
                       retain_trials=False, packages_to_install=None, pip_index_urls=DEFAULT_PIP_INDEX_URLS,
                       trial_active_deadline_seconds=None):
    """Katib's trialTemplate (JSON, camelCase keys) for tune() with a function objective and a Job trial."""
    container = {
        "name": PRIMARY_CONTAINER_NAME,
        "image": base_image,
        "command": ["bash", "-c"],
        "args": [objective_script(objective, parameters, packages_to_install, pip_index_urls)],
    }
    resources = container_resources(resources_per_trial)
    if resources is not None:
        container["resources"] = resources
    env, env_from = container_env(env_per_trial)
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    job_spec = {
        "template": {
            "metadata": {"annotations": {ISTIO_SIDECAR_INJECTION: "false"}},
            "spec": {"containers": [container], "restartPolicy": "Never"},
        },
    }
    if trial_active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = trial_active_deadline_seconds
    return {
        "primaryContainerName": PRIMARY_CONTAINER_NAME,
        "retain": bool(retain_trials),
        "trialParameters": trial_parameters(parameters),
        "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": job_spec},
    }
