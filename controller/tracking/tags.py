"""The names driftctl gives things in MLflow: tag keys, the baseline's artifact path, the
controller's experiment. Renaming one breaks every store already written."""

from __future__ import annotations

TAG = "driftctl."
KIND = TAG + "kind"
MODEL = TAG + "model"
VERSION = TAG + "model_version"
BASELINE = TAG + "baseline"  # on a run: artifact path of its baseline (set last)
BASELINE_RUN = TAG + "baseline_run_id"  # on a model version: the run holding its baseline
BASELINE_PATH = "driftctl/baseline"
EXPERIMENT = "driftctl-{model}"
