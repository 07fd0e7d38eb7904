"""driftctl: a retraining controller for MLflow-registered models.

The public API. The package reads in pipeline order: ``inputs`` (tables, the model's
predictions, production batches), ``profiles`` (per-feature profiles and the training
baseline), ``statistics`` (drift measures and verdicts, data quality, performance metrics,
paired tests), ``attribution`` (Shapley values and their shift), ``results`` (the report and
its renderings), ``loop`` (assess, decide, cycle, retrain, registry), ``tracking`` (the one
place MLflow is called), ``alerts`` (signed notifications), ``service`` (``driftctl serve``),
``cli`` and ``demo``. Names are imported on first use, so the
command line answers ``--help`` without loading MLflow.
"""

from __future__ import annotations

import importlib

# public name -> (module, attribute)
_EXPORTS = {
    "Baseline": ("controller.profiles.baseline", "Baseline"),
    "build_baseline": ("controller.profiles.build", "build_baseline"),
    "DriftctlError": ("controller._errors", "DriftctlError"),
    "InputError": ("controller._errors", "InputError"),
    "NotFoundError": ("controller._errors", "NotFoundError"),
    "PolicyError": ("controller._errors", "PolicyError"),
    "Policy": ("controller.policy", "Policy"),
    "Rule": ("controller.policy", "Rule"),
    "Batches": ("controller.policy", "Batches"),
    "Quality": ("controller.policy", "Quality"),
    "Attribution": ("controller.policy", "Attribution"),
    "Multivariate": ("controller.policy", "Multivariate"),
    "Retrain": ("controller.policy", "Retrain"),
    "Alerts": ("controller.policy", "Alerts"),
    "Report": ("controller.results.report", "Report"),
    "assess": ("controller.loop.assess", "assess"),
    "log_baseline": ("controller.tracking", "log_baseline"),
    "log_batch": ("controller.inputs.batches", "log_batch"),
    "log_labels": ("controller.inputs.batches", "log_labels"),
    "monitor": ("controller.loop.cycle", "monitor"),
    "cycle": ("controller.loop.cycle", "cycle"),
    "retrain": ("controller.loop.retrain", "retrain"),
    "promote": ("controller.loop.cycle", "promote"),
    "rollback": ("controller.loop.registry", "rollback"),
    "ledger": ("controller.loop.registry", "ledger"),
    "CHAMPION": ("controller.loop.registry", "CHAMPION"),
    "CHALLENGER": ("controller.loop.registry", "CHALLENGER"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'controller' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module), attribute)
