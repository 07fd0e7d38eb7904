"""Model performance on labelled rows, for classification and regression."""

from __future__ import annotations

import numpy as np


def score(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None = None,
    positive: str | None = None,
) -> dict[str, float]:
    """Metrics for ``task`` ("classification" or "regression"); empty without rows.

    Classification gives accuracy and F1 (binary for two classes, else macro), and with a
    probability ``y_score`` of the ``positive`` class (default: the last label in sorted
    order, as scikit-learn's ``classes_[1]``) for a binary task also ROC AUC and log loss.
    Regression gives RMSE, MAE and R^2.
    """
    from sklearn import metrics  # here, so that logging labels does not load scikit-learn

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.size == 0:
        return {}
    if task == "regression":
        y_true, y_pred = y_true.astype(float), y_pred.astype(float)
        out = {
            "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        }
        if y_true.size > 1:
            out["r2"] = float(metrics.r2_score(y_true, y_pred))
        return out
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    labels = np.union1d(y_true, y_pred)
    binary = labels.size <= 2
    positive = str(positive) if positive is not None else str(labels[-1])
    t, p = y_true, y_pred
    if binary:
        tp = np.sum((p == positive) & (t == positive))
        wrong = np.sum(p != t)
        f1 = float(2 * tp / (2 * tp + wrong)) if tp + wrong else 0.0
    else:
        f1 = float(metrics.f1_score(t, p, average="macro", zero_division=0.0))
    out = {"accuracy": float(np.mean(t == p)), "f1": f1}
    if y_score is not None and binary:
        hit = (t == positive).astype(int)
        if 0 < hit.sum() < hit.size:
            out["roc_auc"] = float(metrics.roc_auc_score(hit, y_score))
        out["log_loss"] = float(metrics.log_loss(hit, y_score, labels=[0, 1]))
    return out


def as_labels(values) -> np.ndarray:
    """Class labels as strings, with whole floats written as ints (1.0 and 1 are one class)."""
    x = np.asarray(values)
    if x.dtype.kind == "f" and np.all(np.isfinite(x)) and np.all(x == np.round(x)):
        x = x.astype(np.int64)
    return x.astype(str)


def primary(scores: dict[str, float]) -> str | None:
    """The metric a report leads with: ROC AUC, else accuracy, else RMSE."""
    return next((m for m in ("roc_auc", "accuracy", "rmse") if m in scores), None)
