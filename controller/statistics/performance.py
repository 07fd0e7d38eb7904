"""Model performance on labelled rows, for classification and regression: every metric the
reports and the champion/challenger comparison use, defined once."""

from __future__ import annotations

import numpy as np

# Metrics by task, with greater_is_better. All but ROC AUC are means or ratios of sums of
# per-row terms, so a bootstrap resample is one fancy-indexing pass.
METRICS = {
    "classification": {"roc_auc": True, "log_loss": False, "accuracy": True, "f1": True},
    "regression": {"rmse": False, "mae": False},
}
# The metric a report, a performance trigger and the gate lead with: the first available.
PRIMARY = ("roc_auc", "accuracy", "rmse")


def primary(available) -> str | None:
    """The primary metric among ``available`` (metric names): ROC AUC, else accuracy, else
    RMSE."""
    return next((m for m in PRIMARY if m in available), None)


def computable(task: str, scored: bool) -> list[str]:
    """The metrics of ``task`` (``METRICS``) that predictions give, with the metrics of
    probability scores only when ``scored``."""
    return [n for n in METRICS[task] if scored or n not in ("roc_auc", "log_loss")]


def greater_is_better(name: str) -> bool:
    """Whether a higher value of ``name`` (one of ``METRICS``) is better."""
    return next(by_name[name] for by_name in METRICS.values() if name in by_name)


def metric(name: str, y, pred, score, rows: np.ndarray | None = None) -> np.ndarray | float:
    """``name`` on all rows, or on each row set of ``rows`` (resamples x n) at once.

    For ROC AUC, log loss and F1, ``y`` and ``pred`` are 0/1 (1 = the positive class) and
    ``score`` the positive class's probability; accuracy compares labels of any type.
    """
    from sklearn import metrics  # here, so that logging labels does not load scikit-learn

    if name == "roc_auc":
        return float(metrics.roc_auc_score(y, score))
    if name == "log_loss":
        # Clipped to machine precision, as scikit-learn's log_loss does.
        eps = np.finfo(float).eps
        s = np.clip(np.asarray(score, float), eps, 1 - eps)
        terms = -np.where(np.asarray(y) == 1, np.log(s), np.log(1 - s))
    elif name == "accuracy":
        terms = (np.asarray(y) == np.asarray(pred)).astype(float)
    elif name in ("rmse", "mae"):
        err = np.asarray(y, float) - np.asarray(pred, float)
        terms = err**2 if name == "rmse" else np.abs(err)
    elif name == "f1":
        hit, said = np.asarray(y) == 1, np.asarray(pred) == 1
        tp, wrong = (hit & said).astype(float), (hit != said).astype(float)
        tp, wrong = (tp, wrong) if rows is None else (tp[rows], wrong[rows])
        tp, wrong = tp.sum(axis=-1), wrong.sum(axis=-1)
        f1 = np.divide(2 * tp, 2 * tp + wrong, out=np.zeros_like(tp), where=2 * tp + wrong > 0)
        return float(f1) if rows is None else f1
    else:
        raise ValueError(f"unknown metric {name!r}")
    mean = (terms if rows is None else terms[rows]).mean(axis=-1)
    out = np.sqrt(mean) if name == "rmse" else mean
    return float(out) if rows is None else out


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
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.size == 0:
        return {}
    if task == "regression":
        out = {name: metric(name, y_true, y_pred, None) for name in ("rmse", "mae")}
        if y_true.size > 1:
            out["r2"] = float(metrics.r2_score(y_true.astype(float), y_pred.astype(float)))
        return out
    t, p = as_labels(y_true), as_labels(y_pred)
    labels = np.union1d(t, p)
    binary = labels.size <= 2
    positive = str(positive) if positive is not None else str(labels[-1])
    hit, said = (t == positive).astype(int), (p == positive).astype(int)
    if binary:
        f1 = metric("f1", hit, said, None)
    else:
        f1 = float(metrics.f1_score(t, p, average="macro", zero_division=0.0))
    out = {"accuracy": metric("accuracy", t, p, None), "f1": f1}
    if y_score is not None and binary:
        if 0 < hit.sum() < hit.size:
            out["roc_auc"] = metric("roc_auc", hit, said, y_score)
        out["log_loss"] = metric("log_loss", hit, said, y_score)
    return out


def as_labels(values) -> np.ndarray:
    """Class labels as strings, with whole floats written as ints (1.0 and 1 are one class)."""
    x = np.asarray(values)
    if x.dtype.kind == "f" and np.all(np.isfinite(x)) and np.all(x == np.round(x)):
        x = x.astype(np.int64)
    return x.astype(str)
