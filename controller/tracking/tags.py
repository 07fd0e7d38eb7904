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
HISTORY_RUN = TAG + "history_run"  # on a monitor run: the drift history run of its model
# MLflow's own keys. The experiment's kind is what the UI of MLflow 3 calls "Machine
# learning" (a page of runs), not "GenAI apps & agents" (traces).
EXPERIMENT_KIND = "mlflow.experimentKind"
MACHINE_LEARNING = "custom_model_development"
PARENT_RUN = "mlflow.parentRunId"
