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


def shared(performance: dict, baseline: dict) -> str | None:
    """The primary metric of those a window (``performance``) and its ``baseline`` both
    have: the one a performance drop is judged on."""
    return primary([m for m, v in performance.items() if v is not None and baseline.get(m)])


def floor(name: str, base: float, tolerance: float) -> float:
    """The value of ``name`` that is worse than ``base`` by ``tolerance``, relatively (below
    it for ROC AUC or accuracy, above it for RMSE): the floor of a performance drop."""
    step = tolerance * abs(base)
    return base - step if greater_is_better(name) else base + step


def worse(name: str, value: float, than: float) -> bool:
    """Whether ``value`` of ``name`` is worse than ``than``."""
    return value < than if greater_is_better(name) else value > than


def relative_drop(name: str, value: float, base: float) -> float:
    """How much worse ``value`` is than ``base``, relatively (negative when better)."""
    change = (base - value) if greater_is_better(name) else (value - base)
    return change / abs(base)


# A bootstrap on at most BOOTSTRAP_ROWS rows, its standard error scaled to the rows there
# are: the metric's sampling error shrinks as 1/sqrt(n), and a few thousand rows pin the
# constant down well, so a million labelled rows cost what two thousand do.
BOOTSTRAP_ROWS = 2000
BOOTSTRAP_RESAMPLES = 400
ONE_SIDED_95 = 1.6448536269514722  # the normal's 95% quantile


def best_case(
    task: str,
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None = None,
    positive: str | None = None,
    seed: int = 0,
) -> float:
    """The one-sided 95% confidence bound of ``name`` on the better side (the value plus
    1.645 bootstrap standard errors for ROC AUC or accuracy, minus them for RMSE): a
    value worse than it is significantly worse than this window's. NaN when the metric is
    undefined on too many resamples (fewer than two labelled rows, or one class)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = y_true.size
    if n < 2:
        return float("nan")
    if task == "regression":
        y, pred, score = y_true.astype(float), y_pred.astype(float), None
    else:
        t, p = as_labels(y_true), as_labels(y_pred)
        positive = str(positive) if positive is not None else str(np.union1d(t, p)[-1])
        if name == "accuracy":
            y, pred, score = t, p, None
        else:
            y, pred, score = (t == positive).astype(int), (p == positive).astype(int), y_score
    rng = np.random.default_rng(seed)
    value = metric(name, y, pred, score)
    m = min(n, BOOTSTRAP_ROWS)
    if m < n:
        pick = rng.choice(n, m, replace=False)
        y, pred = y[pick], pred[pick]
        score = None if score is None else np.asarray(score)[pick]
    found = metric(name, y, pred, score, rng.integers(0, m, size=(BOOTSTRAP_RESAMPLES, m)))
    found = found[np.isfinite(found)]
    if found.size < BOOTSTRAP_RESAMPLES // 2:
        return float("nan")
    se = float(np.std(found, ddof=1)) * np.sqrt(m / n)
    return value + ONE_SIDED_95 * se if greater_is_better(name) else value - ONE_SIDED_95 * se


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
        if rows is None:
            return float(metrics.roc_auc_score(y, score))
        return _roc_auc_rows(np.asarray(y) == 1, np.asarray(score, float), rows)
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


def _roc_auc_rows(hit: np.ndarray, score: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """ROC AUC on each row set of ``rows`` (resamples x n), as the Mann-Whitney statistic
    with each row weighted by how often it was drawn; NaN where one class is missing."""
    b, n = rows.shape[0], hit.size
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    flat = (np.arange(b)[:, None] * n + rows).ravel()
    drawn = np.bincount(flat, minlength=b * n).reshape(b, n)[:, order].astype(float)
    pos = np.add.reduceat(drawn * hit[order], starts, axis=1)
    neg = np.add.reduceat(drawn * ~hit[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored below each group
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (pos * (below + neg / 2)).sum(axis=1) / total, np.nan)


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
