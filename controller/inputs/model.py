"""Predictions from a model, whatever its flavor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller._errors import InputError
from controller.statistics.performance import as_labels


@dataclass(frozen=True)
class Predictions:
    """Predicted values; for binary classifiers also the probability of ``positive``."""

    values: np.ndarray
    score: np.ndarray | None = None
    positive: str | None = None

    def for_task(self, task: str | None) -> np.ndarray:
        """The values as profiles and batches hold them: class labels as text."""
        return as_labels(self.values) if task == "classification" else self.values


def task_of(model, y: pd.Series | None = None, predictions: np.ndarray | None = None) -> str:
    """ "classification" or "regression", from the estimator, else from the target's values."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if isinstance(model, BaseEstimator):
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    values = y if y is not None else predictions
    if values is None:
        return "regression"
    x = np.asarray(values)
    if x.dtype.kind in "fc" and not np.all(np.isnan(x) | (x == np.round(x))):
        return "regression"
    if x.dtype.kind in "iuf" and len(np.unique(x[~pd.isna(x)])) > 20:
        return "regression"
    return "classification"


def predict(model, features: pd.DataFrame) -> Predictions:
    """Predict with a scikit-learn estimator or an MLflow pyfunc model.

    Whatever the model's own code raises on these rows becomes an InputError that names the
    likely cause; an error in driftctl's code is not caught.
    """
    classes = getattr(model, "classes_", None)
    binary = hasattr(model, "predict_proba") and classes is not None and len(classes) == 2
    try:
        estimator, x = _final_step(model, features)
        values = estimator.predict(x)
        score = estimator.predict_proba(x) if binary else None
    except Exception as exc:  # the model's code: any error means the data does not fit it
        raise InputError(
            f"the model failed to predict on this data: {type(exc).__name__}: {exc}",
            "check the data against the model's training columns and categories, or "
            "pass the model's predictions in the file with --prediction-col",
        ) from exc
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if score is None:
        return Predictions(values)
    return Predictions(values, np.asarray(score)[:, 1], str(classes[1]))


def _final_step(model, features):
    """A scikit-learn pipeline's final estimator and the rows its steps made, so that
    ``predict`` and ``predict_proba`` do not transform the rows twice; else the model.
    Only a plain ``Pipeline`` whose steps all transform: a subclass may predict its own way,
    and samplers (imbalanced-learn) do not transform at prediction time."""
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in model.steps[:-1]] if type(model) is Pipeline else []
    if steps and all(s == "passthrough" or s is None or hasattr(s, "transform") for s in steps):
        return model[-1], model[:-1].transform(features)
    return model, features
