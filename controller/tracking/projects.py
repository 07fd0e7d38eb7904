"""MLflow for building a challenger: the user's training entry point (an MLflow project),
and the refitted model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import ExecutionException, MlflowException

from controller import tracking
from controller._errors import InputError


def train_in_project(
    project: str, entry_point: str, train: pd.DataFrame, target: str, experiment: str
) -> str:
    """Run the user's training entry point on the training rows; returns its run, which
    holds the trained model as ``model``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "training.parquet"
        train.to_parquet(path, index=False)
        try:
            submitted = mlflow.projects.run(
                project,
                entry_point,
                parameters={"training_data": str(path), "target": target},
                experiment_id=experiment,
                env_manager="local",
                synchronous=True,
            )
        except (ExecutionException, MlflowException) as exc:
            raise InputError(
                f"the training entry point {entry_point!r} of the MLflow project "
                f"{project!r} failed: {exc}",
                f"run it by hand to see why: mlflow run {project} -e {entry_point} "
                f"-P training_data=FILE -P target={target} --env-manager local",
            ) from exc
    run_id = submitted.run_id
    if not tracking.has_model(run_id, "model"):
        tracking.delete_run(run_id)
        raise InputError(
            f"the training entry point {entry_point!r} logged no model named 'model'",
            "log the trained model in it with mlflow.<flavor>.log_model(model, name='model')",
        )
    return run_id


def log_refitted(model, name: str, version: str) -> None:
    """Log a scikit-learn model refitted from version ``version`` of ``name`` as ``model``
    in the active run, serialized as that version was (pickle or skops, trusted types)."""
    import sklearn

    flavor = mlflow.models.get_model_info(f"models:/{name}/{version}").flavors["sklearn"]
    mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format=flavor.get("serialization_format"),
        skops_trusted_types=flavor.get("skops_trusted_types"),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
