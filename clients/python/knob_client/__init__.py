"""Client for knobd, the knob hyperparameter-search daemon, with Katib's SDK method names."""

from . import search
from .client import KnobClient, KnobError, report_metrics

__all__ = ["KnobClient", "KnobError", "report_metrics", "search"]
