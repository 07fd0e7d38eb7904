"""driftctl: a retraining controller for MLflow-registered models.

The public API; everything else lives in modules named after the step they implement
(profile, stats, drift, quality, report, batches, cycle, tracking). Names are imported on
first use, so the command line starts without loading MLflow for ``--help``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Baseline": "controller.baseline",
    "build_baseline": "controller.baseline",
    "DriftctlError": "controller._errors",
    "InputError": "controller._errors",
    "NotFoundError": "controller._errors",
    "PolicyError": "controller._errors",
    "Policy": "controller.policy",
    "Report": "controller.report",
    "assess": "controller.report",
    "log_baseline": "controller.tracking",
    "log_batch": "controller.batches",
    "log_labels": "controller.batches",
    "monitor": "controller.cycle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'controller' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
