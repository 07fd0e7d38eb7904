"""MLflow for building a challenger: the user's training entry point (an MLflow project),
the refitted model and the parameters of its run, and loading a model that may be gone."""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import ExecutionException, MlflowException

from controller import tracking
from controller._errors import InputError

# What loading a model raises when its files are gone or unreadable, its flavor's library
# is missing here, or a class it was pickled with no longer exists.
_LOAD_ERRORS = (
    MlflowException,
    OSError,
    ImportError,
    EOFError,
    pickle.UnpicklingError,
    AttributeError,
)


class ModelLoadError(Exception):
    """A registered model version whose model cannot be loaded; the message says why."""


def load_version(mv: ModelVersion):
    """``tracking.load_model``, raising ``ModelLoadError`` when the model cannot be loaded."""
    try:
        return tracking.load_model(mv)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(str(exc)) from exc


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
        tracking.client().delete_run(run_id)
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


def log_params(run_id: str, params: dict) -> None:
    """Log parameters (any values, written as text) in one request."""
    tracking.client().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
