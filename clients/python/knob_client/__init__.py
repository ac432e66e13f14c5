"""Client for knobd, the knob hyperparameter-search daemon, with Katib's SDK method names.

`knob_client.katib` is Katib's SDK itself over knobd: `from knob_client import katib` in place of
`from kubeflow import katib`."""

from . import search
from .client import KnobClient, KnobError, report_metrics

__all__ = ["KnobClient", "KnobError", "report_metrics", "search"]
