"""driftctl: a retraining controller for MLflow-registered models.

The public API; everything else lives in modules named after the step they implement
(profile, stats, drift, quality, report, batches, monitor, tracking).
"""

from controller._errors import DriftctlError, InputError, NotFoundError, PolicyError
from controller.baseline import Baseline, build_baseline
from controller.batches import log_batch, log_labels
from controller.monitor import monitor
from controller.policy import Policy
from controller.report import Report, assess
from controller.tracking import log_baseline

__all__ = [
    "Baseline",
    "DriftctlError",
    "InputError",
    "NotFoundError",
    "Policy",
    "PolicyError",
    "Report",
    "assess",
    "build_baseline",
    "log_baseline",
    "log_batch",
    "log_labels",
    "monitor",
]
