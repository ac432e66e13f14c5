"""Search-space helpers with Katib's names: each returns a parameter description for tune()."""


def double(min, max, step=None, distribution=None):
    """A real number in [min, max]; `step` for a grid; `distribution="logUniform"` for a log scale."""
    return _parameter("double", min=min, max=max, step=step, distribution=distribution)


def int(min, max, step=None, distribution=None):  # noqa: A001 - Katib's name
    """A whole number in [min, max], every `step` (1 by default)."""
    return _parameter("int", min=min, max=max, step=step, distribution=distribution)


def categorical(list):  # noqa: A002 - Katib's name
    """One of the listed values."""
    return _parameter("categorical", list=[str(value) for value in list])


def _parameter(kind, **space):
    feasible = {key: str(value) if not isinstance(value, list) else value for key, value in space.items() if value is not None}
    return {"__knob_parameter__": True, "parameterType": kind, "feasibleSpace": feasible}


def is_parameter(value):
    return isinstance(value, dict) and value.get("__knob_parameter__") is True
