"""Objects with the attribute paths of Katib's SDK models (`V1beta1Experiment`, `V1beta1Trial`, ...).

Each class lists its fields as (attribute, type); the JSON key of an attribute is its camelCase form, as in
Katib's `kubeflow.org/v1beta1` objects. Types are "str", "int", "float", "bool", "datetime", "object" (kept as
given), "list[T]", "dict(str, T)" or another class of this module.

As Katib's models do, an object has `to_dict()` (attribute names as keys), `to_str()`, equality by value, and
keyword construction. Keys of the JSON that a class has no attribute for (knob's `trialTemplate.command`, say)
are kept and written back by `to_json()`, though `to_dict()` leaves them out, as Katib's would. Unlike Katib's
models, an object also reads as the JSON object older Katib SDKs returned as a
plain dict: `experiment["status"]["conditions"]`, `experiment.get("spec")`, `"status" in experiment`.
"""

import datetime
import pprint
import sys

_FIELDS = {
    "V1ObjectMeta": [
        ("annotations", "dict(str, str)"), ("creation_timestamp", "datetime"), ("deletion_grace_period_seconds", "int"),
        ("deletion_timestamp", "datetime"), ("finalizers", "list[str]"), ("generate_name", "str"), ("generation", "int"),
        ("labels", "dict(str, str)"), ("managed_fields", "list[object]"), ("name", "str"), ("namespace", "str"),
        ("owner_references", "list[object]"), ("resource_version", "str"), ("self_link", "str"), ("uid", "str")],
    "V1beta1Experiment": [
        ("api_version", "str"), ("kind", "str"), ("metadata", "V1ObjectMeta"), ("spec", "V1beta1ExperimentSpec"),
        ("status", "V1beta1ExperimentStatus")],
    "V1beta1ExperimentSpec": [
        ("algorithm", "V1beta1AlgorithmSpec"), ("early_stopping", "V1beta1EarlyStoppingSpec"),
        ("max_failed_trial_count", "int"), ("max_trial_count", "int"), ("metrics_collector_spec", "V1beta1MetricsCollectorSpec"),
        ("nas_config", "V1beta1NasConfig"), ("objective", "V1beta1ObjectiveSpec"), ("parallel_trial_count", "int"),
        ("parameters", "list[V1beta1ParameterSpec]"), ("resume_policy", "str"), ("trial_template", "V1beta1TrialTemplate")],
    "V1beta1ExperimentStatus": [
        ("completion_time", "datetime"), ("conditions", "list[V1beta1ExperimentCondition]"),
        ("current_optimal_trial", "V1beta1OptimalTrial"), ("early_stopped_trial_list", "list[str]"),
        ("failed_trial_list", "list[str]"), ("killed_trial_list", "list[str]"), ("last_reconcile_time", "datetime"),
        ("metrics_unavailable_trial_list", "list[str]"), ("pending_trial_list", "list[str]"),
        ("running_trial_list", "list[str]"), ("start_time", "datetime"), ("succeeded_trial_list", "list[str]"),
        ("trial_metrics_unavailable", "int"), ("trials", "int"), ("trials_early_stopped", "int"), ("trials_failed", "int"),
        ("trials_killed", "int"), ("trials_pending", "int"), ("trials_running", "int"), ("trials_succeeded", "int")],
    "V1beta1ExperimentCondition": [
        ("last_transition_time", "datetime"), ("last_update_time", "datetime"), ("message", "str"), ("reason", "str"),
        ("status", "str"), ("type", "str")],
    "V1beta1OptimalTrial": [
        ("best_trial_name", "str"), ("observation", "V1beta1Observation"),
        ("parameter_assignments", "list[V1beta1ParameterAssignment]")],
    "V1beta1Observation": [("metrics", "list[V1beta1Metric]")],
    "V1beta1Metric": [("latest", "str"), ("max", "str"), ("min", "str"), ("name", "str")],
    "V1beta1ParameterAssignment": [("name", "str"), ("value", "str")],
    "V1beta1ObjectiveSpec": [
        ("additional_metric_names", "list[str]"), ("goal", "float"), ("metric_strategies", "list[V1beta1MetricStrategy]"),
        ("objective_metric_name", "str"), ("type", "str")],
    "V1beta1MetricStrategy": [("name", "str"), ("value", "str")],
    "V1beta1AlgorithmSpec": [("algorithm_name", "str"), ("algorithm_settings", "list[V1beta1AlgorithmSetting]")],
    "V1beta1AlgorithmSetting": [("name", "str"), ("value", "str")],
    "V1beta1EarlyStoppingSpec": [("algorithm_name", "str"), ("algorithm_settings", "list[V1beta1EarlyStoppingSetting]")],
    "V1beta1EarlyStoppingSetting": [("name", "str"), ("value", "str")],
    "V1beta1EarlyStoppingRule": [("comparison", "str"), ("name", "str"), ("start_step", "int"), ("value", "str")],
    "V1beta1ParameterSpec": [("feasible_space", "V1beta1FeasibleSpace"), ("name", "str"), ("parameter_type", "str")],
    "V1beta1FeasibleSpace": [("distribution", "str"), ("list", "list[str]"), ("max", "str"), ("min", "str"), ("step", "str")],
    "V1beta1TrialTemplate": [
        ("config_map", "V1beta1ConfigMapSource"), ("failure_condition", "str"), ("primary_container_name", "str"),
        ("primary_pod_labels", "dict(str, str)"), ("retain", "bool"), ("success_condition", "str"),
        ("trial_parameters", "list[V1beta1TrialParameterSpec]"), ("trial_spec", "object")],
    "V1beta1TrialParameterSpec": [("description", "str"), ("name", "str"), ("reference", "str")],
    "V1beta1ConfigMapSource": [("config_map_name", "str"), ("config_map_namespace", "str"), ("template_path", "str")],
    "V1beta1MetricsCollectorSpec": [("collector", "V1beta1CollectorSpec"), ("source", "V1beta1SourceSpec")],
    "V1beta1CollectorSpec": [("custom_collector", "object"), ("kind", "str")],
    "V1beta1SourceSpec": [("file_system_path", "V1beta1FileSystemPath"), ("filter", "V1beta1FilterSpec"), ("http_get", "object")],
    "V1beta1FileSystemPath": [("format", "str"), ("kind", "str"), ("path", "str")],
    "V1beta1FilterSpec": [("metrics_format", "list[str]")],
    "V1beta1NasConfig": [("graph_config", "V1beta1GraphConfig"), ("operations", "list[V1beta1Operation]")],
    "V1beta1GraphConfig": [("input_sizes", "list[int]"), ("num_layers", "int"), ("output_sizes", "list[int]")],
    "V1beta1Operation": [("operation_type", "str"), ("parameters", "list[V1beta1ParameterSpec]")],
    "V1beta1Trial": [
        ("api_version", "str"), ("kind", "str"), ("metadata", "V1ObjectMeta"), ("spec", "V1beta1TrialSpec"),
        ("status", "V1beta1TrialStatus")],
    "V1beta1TrialSpec": [
        ("early_stopping_rules", "list[V1beta1EarlyStoppingRule]"), ("failure_condition", "str"), ("labels", "dict(str, str)"),
        ("metrics_collector", "V1beta1MetricsCollectorSpec"), ("objective", "V1beta1ObjectiveSpec"),
        ("parameter_assignments", "list[V1beta1ParameterAssignment]"), ("primary_container_name", "str"),
        ("primary_pod_labels", "dict(str, str)"), ("retain_run", "bool"), ("run_spec", "object"),
        ("success_condition", "str")],
    "V1beta1TrialStatus": [
        ("completion_time", "datetime"), ("conditions", "list[V1beta1TrialCondition]"), ("last_reconcile_time", "datetime"),
        ("observation", "V1beta1Observation"), ("start_time", "datetime")],
    "V1beta1TrialCondition": [
        ("last_transition_time", "datetime"), ("last_update_time", "datetime"), ("message", "str"), ("reason", "str"),
        ("status", "str"), ("type", "str")],
    # What Katib's get_trial_metrics returns: its DB manager's MetricLog messages (time_stamp, metric.name, metric.value).
    "MetricLog": [("time_stamp", "str"), ("metric", "MetricLogMetric")],
    "MetricLogMetric": [("name", "str"), ("value", "str")],
}


def _camel(attribute):
    head, *rest = attribute.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class KatibModel:
    """An object of one of the classes below; see the module's summary."""

    _fields = ()

    def __init__(self, *args, **kwargs):
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__}() takes at most {len(self._fields)} positional arguments")
        names = [attribute for attribute, _ in self._fields]
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key == "local_vars_configuration":  # accepted, as Katib's models accept it
                continue
            if key not in names:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {key!r}")
            values[key] = value
        for attribute in names:
            setattr(self, attribute, values.get(attribute))
        self._extra = {}

    @classmethod
    def from_json(cls, data):
        """The object for a JSON object with camelCase keys; keys this class has no field for are kept aside."""
        if data is None:
            return None
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} needs a JSON object, not {type(data).__name__}")
        result = cls(**{attribute: _decode(data.get(_camel(attribute)), kind) for attribute, kind in cls._fields
                        if _camel(attribute) in data})
        known = {_camel(attribute) for attribute, _ in cls._fields}
        result._extra = {key: value for key, value in data.items() if key not in known}
        return result

    def to_dict(self):
        """The fields by attribute name, nested objects as dicts, as Katib's models' to_dict() gives them."""
        return {attribute: _plain(getattr(self, attribute)) for attribute, _ in self._fields}

    def to_json(self):
        """The JSON object with camelCase keys and without unset fields, as Kubernetes serializes the object."""
        fields = {_camel(attribute): _serialize(value) for attribute, _ in self._fields
                  if (value := getattr(self, attribute)) is not None}
        return dict(self._extra, **fields)

    def to_str(self):
        return pprint.pformat(self.to_dict())

    def __repr__(self):
        return self.to_str()

    def __eq__(self, other):
        return isinstance(other, type(self)) and self.to_json() == other.to_json()

    def __ne__(self, other):
        return not self == other

    # The dict that older Katib SDKs returned.

    def _legacy(self):
        return self.to_json()

    def __getitem__(self, key):
        return self._legacy()[key]

    def get(self, key, default=None):
        return self._legacy().get(key, default)

    def __contains__(self, key):
        return key in self._legacy()


def _decode(value, kind):
    if value is None:
        return None
    if kind.startswith("list["):
        return [_decode(item, kind[5:-1]) for item in value]
    if kind.startswith("dict("):
        inner = kind[5:-1].split(",", 1)[1].strip()
        return {key: _decode(item, inner) for key, item in value.items()}
    if kind == "datetime":
        return parse_time(value)
    if kind == "object":
        return value
    if kind in ("str", "int", "float", "bool"):
        return {"str": str, "int": int, "float": float, "bool": bool}[kind](value)
    return getattr(sys.modules[__name__], kind).from_json(value)


def _plain(value):
    if isinstance(value, list):
        return [item.to_dict() if hasattr(item, "to_dict") else item for item in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {key: item.to_dict() if hasattr(item, "to_dict") else item for key, item in value.items()}
    return value


def _serialize(value):
    if isinstance(value, KatibModel):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_serialize(item) for item in value]
    if isinstance(value, dict):
        return {key: _serialize(item) for key, item in value.items()}
    if isinstance(value, datetime.datetime):
        return format_time(value)
    return value


def parse_time(text):
    """A Kubernetes timestamp ("2026-01-02T03:04:05Z") as an aware datetime."""
    if isinstance(text, datetime.datetime):
        return text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _define(name, fields):
    cls = type(name, (KatibModel,), {"_fields": tuple(fields), "__doc__": f"Katib's {name}: " +
                                     ", ".join(attribute for attribute, _ in fields) + "."})
    cls.__module__ = __name__
    return cls


for _name, _fields in _FIELDS.items():
    globals()[_name] = _define(_name, _fields)



def _optimal_trial_legacy(self):
    # Older SDKs answered get_optimal_hyperparameters with {"currentOptimalTrial": {...}}.
    fields = self.to_json()
    return dict(fields, currentOptimalTrial=fields)


globals()["V1beta1OptimalTrial"]._legacy = _optimal_trial_legacy

__all__ = ["KatibModel", "parse_time", "format_time"] + list(_FIELDS)
