"""Performance estimated before labels arrive: confidence-based performance estimation
(CBPE, as NannyML does it) for binary classifiers.

The model's scores are calibrated on the baseline's labelled reference rows: by logistic
recalibration of their log-odds (Platt scaling) or isotonic regression, whichever has the
lower Brier score under cross-validation on the reference, and only if that is lower than
the raw scores' Brier score.
Then each window row has p = P(y = 1 | score), and the confusion matrix, accuracy, F1 and
the ROC curve are taken in expectation over labels drawn from p. This holds while P(y | score)
is the reference's (covariate shift); under concept drift only labels tell.

Pure functions over numpy arrays: ``y`` and ``said`` are 0/1 (1 = the positive class),
``score`` the model's probability of the positive class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRICS = ("roc_auc", "accuracy", "f1")


CALIBRATIONS = ("none", "logistic", "isotonic")


@dataclass(frozen=True)
class Calibration:
    """A monotone map from scores to P(y = 1 | score): ``method`` "none" (the scores
    clipped to [0, 1]), "logistic" (``values`` = slope and intercept on the scores'
    log-odds) or "isotonic" (steps at ``knots`` to ``values``). ``brier`` holds each
    method's Brier score on the reference: the raw scores' in-sample, the others'
    out-of-fold."""

    method: str
    knots: np.ndarray
    values: np.ndarray
    brier: dict[str, float]

    def __call__(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, float)
        if self.method == "logistic":
            a, b = self.values
            return _sigmoid(a * _logit(score) + b)
        if self.method == "isotonic":
            return np.interp(score, self.knots, self.values)
        return np.clip(score, 0.0, 1.0)

    @classmethod
    def fit(cls, method: str, score: np.ndarray, y: np.ndarray, brier=None) -> Calibration:
        """The map of ``method`` fitted to labels ``y`` (0/1) of ``score``."""
        score, y = np.asarray(score, float), np.asarray(y, float)
        brier = brier or {}
        if method == "logistic":
            return cls(method, np.empty(0), _logistic(_logit(score), y), brier)
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            fit = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
            return cls(method, fit.X_thresholds_, fit.y_thresholds_, brier)
        return cls("none", np.empty(0), np.empty(0), brier)


def _logit(score: np.ndarray) -> np.ndarray:
    s = np.clip(score, 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def _logistic(x: np.ndarray, y: np.ndarray, steps: int = 100) -> np.ndarray:
    """Slope and intercept of the logistic regression of ``y`` on ``x``: Newton's method,
    its step halved until the log-loss falls, with a 1e-6 ridge so that separable labels
    stay finite."""
    from scipy.special import log_expit

    X = np.column_stack([x, np.ones_like(x)])

    def loss(w):
        z = X @ w
        return -np.sum(y * log_expit(z) + (1 - y) * log_expit(-z)) + 5e-7 * w @ w

    w = np.array([1.0, 0.0])
    current = loss(w)
    for _ in range(steps):
        p = _sigmoid(X @ w)
        grad = X.T @ (p - y) + 1e-6 * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        for _ in range(30):
            if (found := loss(w - step)) <= current:
                break
            step = step / 2
        w, current = w - step, found
        if np.abs(step).max() < 1e-10:
            break
    return w


def calibrate(score: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> Calibration:
    """Calibrate ``score`` against labels ``y`` (0/1) on the reference: the method of
    ``CALIBRATIONS`` with the lowest Brier score, out-of-fold over ``folds`` folds for the
    fitted maps; the raw scores win ties."""
    score, y = np.asarray(score, float), np.asarray(y, float)
    brier = {"none": float(np.mean((np.clip(score, 0, 1) - y) ** 2))}
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    for method in CALIBRATIONS[1:]:
        out = np.empty(len(y))
        for k in range(folds):
            fitted = Calibration.fit(method, score[fold != k], y[fold != k])
            out[fold == k] = fitted(score[fold == k])
        brier[method] = float(np.mean((out - y) ** 2))
    best = min(CALIBRATIONS, key=lambda m: (brier[m], CALIBRATIONS.index(m)))
    return Calibration.fit(best, score, y, brier)


@dataclass(frozen=True)
class Ranking:
    """The window's rows by descending score, with the ends of groups of tied scores: what
    the expected ROC curve needs, computed once for any probabilities."""

    order: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, score: np.ndarray) -> Ranking:
        order = np.argsort(-np.asarray(score, float), kind="stable")
        s = np.asarray(score, float)[order]
        ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
        return cls(order, ends)


def expected(p: np.ndarray, said: np.ndarray, ranking: Ranking) -> dict[str, float]:
    """Expected accuracy, F1 and ROC AUC of predictions ``said`` when each row's label is 1
    with probability ``p``. Expected counts: TP = sum p over predicted positives, FP = sum
    (1 - p) over them, FN = sum p over predicted negatives. ROC AUC: the area under the
    curve of expected TPR against expected FPR over the score's thresholds (p and 1 - p
    counted as expected positives and negatives); absent when either sum is 0."""
    p, said = np.asarray(p, float), np.asarray(said, bool)
    tp, fp = p[said].sum(), (1 - p[said]).sum()
    fn, tn = p[~said].sum(), (1 - p[~said]).sum()
    out = {
        "accuracy": float((tp + tn) / len(p)),
        "f1": float(2 * tp / (2 * tp + fp + fn)) if 2 * tp + fp + fn > 0 else 0.0,
    }
    pos = np.cumsum(p[ranking.order])[ranking.ends]
    neg = np.cumsum(1 - p[ranking.order])[ranking.ends]
    if pos[-1] > 0 and neg[-1] > 0:
        tpr, fpr = np.r_[0.0, pos / pos[-1]], np.r_[0.0, neg / neg[-1]]
        out["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return out


def realised(y: np.ndarray, said: np.ndarray, ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, F1 and ROC AUC of ``said`` against each row of label draws ``y`` (draws x
    n, 0/1); ``ranks`` are the scores' mid-ranks (ROC AUC as the Mann-Whitney statistic)."""
    y = np.asarray(y, float)
    said = np.asarray(said, float)
    n1 = y.sum(axis=1)
    tp = y @ said
    fp, fn = said.sum() - tp, n1 - tp
    n = y.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        auc = (y @ ranks - n1 * (n1 + 1) / 2) / (n1 * (n - n1))
    return {"accuracy": (n - fp - fn) / n, "f1": f1, "roc_auc": auc}


def estimate(
    calibration: Calibration,
    score: np.ndarray,
    said: np.ndarray,
    *,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    draws: int = 200,
    refits: int = 50,
    max_rows: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """CBPE on a window: metric -> (estimate, low, high).

    The band is the estimate plus or minus z standard errors, from two independent sources:
    the labels' own noise (the spread of the realised metric over ``draws`` label vectors
    drawn from the calibrated p) and the calibration's error (the spread of the estimate over
    ``refits`` maps of the same method refitted on bootstrap resamples of the ``reference``
    scores and labels; logistic maps when the raw scores were kept, which are one plausible
    calibration among those the reference supports). Both are measured on up to
    ``max_rows`` rows of the window, the labels' part scaled to the whole window by
    sqrt(rows used / rows).
    """
    from scipy.stats import norm, rankdata

    score, said = np.asarray(score, float), np.asarray(said, bool)
    if score.size == 0:
        return {}
    point = expected(calibration(score), said, Ranking.of(score))
    rng = np.random.default_rng(seed)
    n = score.size
    if n > max_rows:
        rows = np.sort(rng.choice(n, max_rows, replace=False))
        score, said = score[rows], said[rows]
    p = calibration(score)
    # The labels' noise: realised metrics over label vectors drawn from p.
    ranks = rankdata(score)
    found: dict[str, list] = {m: [] for m in METRICS}
    block = max(1, 5_000_000 // score.size)
    for start in range(0, draws, block):
        y = rng.random((min(block, draws - start), score.size)) < p
        for m, v in realised(y, said, ranks).items():
            found[m].append(v)
    var = {
        m: _spread(np.concatenate(v)) * score.size / n if draws > 1 else 0.0
        for m, v in found.items()
    }
    # The calibration's error: the estimate under maps refitted on resampled references.
    if reference is not None and refits > 1:
        method = "logistic" if calibration.method == "none" else calibration.method
        ref_score, ref_y = (np.asarray(a, float) for a in reference)
        ranking = Ranking.of(score)
        again: dict[str, list] = {m: [] for m in METRICS}
        for _ in range(refits):
            pick = rng.integers(0, ref_y.size, ref_y.size)
            again_p = Calibration.fit(method, ref_score[pick], ref_y[pick])(score)
            for m, v in expected(again_p, said, ranking).items():
                again[m].append(v)
        for m, v in again.items():
            if len(v) > 1:
                var[m] = var[m] + np.var(v, ddof=1)
    z = float(norm.ppf(0.5 + confidence / 2))
    out = {}
    for m in METRICS:
        if m in point and np.isfinite(var[m]):
            half = z * float(np.sqrt(var[m]))
            out[m] = (point[m], max(point[m] - half, 0.0), min(point[m] + half, 1.0))
    return out


def _spread(values: np.ndarray) -> float:
    """The sample variance of the defined values (a metric is undefined on some draws, F1
    when no row is predicted positive, say); NaN with fewer than two."""
    values = values[np.isfinite(values)]
    return float(np.var(values, ddof=1)) if values.size > 1 else math.nan
