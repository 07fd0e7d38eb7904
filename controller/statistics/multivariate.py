"""Drift that no single feature shows: a changed relation between features.

Two detectors read the baseline's reference sample and the window's uniform sample:

* **PCA reconstruction error** (NannyML's data reconstruction). Each feature is encoded
  (``design``): numbers and booleans imputed with the median and standardised; a
  categorical one-hot encoded on its ten commonest reference categories plus "other", its
  standardised indicators divided by the square root of their number, so every feature
  weighs one unit of variance. A PCA keeping ``pca_variance`` of the variance is fitted on
  one half of the reference; the value is the mean Euclidean distance between the window's
  rows and their reconstruction. The threshold is calibrated on the other half, which the
  PCA never saw: the ``1 - false_alarm_rate`` quantile of the difference between the mean
  errors of two bootstrap resamples of that half, at its size and at the window's, added
  to its mean error (as ``drift`` calibrates a feature: two resamples of the baseline at
  the sizes of the reference and the window), and never below ``1 + min_error_increase``
  times that error.
* **Domain classifier.** A small gradient-boosted classifier (scikit-learn's
  ``HistGradientBoostingClassifier``, categories natively) learns to tell up to
  ``classifier_rows`` reference rows from as many window rows; the value is its ROC AUC on
  the held-out rows of a stratified ``FOLDS``-fold cross-validation. Without drift, the
  held-out scores do not depend on the side a row came from, so the AUC is the
  Mann-Whitney statistic of two exchangeable samples: mean 1/2, variance
  ``(n1 + n2 + 1) / (12 n1 n2)``, widened by ``OVERLAP`` as the folds' models share
  training rows. The threshold is its ``1 - false_alarm_rate`` quantile (normal
  approximation), never below ``min_auc``; the false-alarm rate it reports is that
  nominal one, not a measurement. A column the reference sample has no value of is left
  out, with a note. The features the classifier relied on
  are those whose permutation, in (up to ``PROBE_ROWS`` of) the held-out rows, lowers the
  AUC most: the drop in AUC is each feature's importance.

Both are pure functions of the rows handed in; ``detect`` runs both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from controller.policy import Multivariate
from controller.profiles.profile import numeric_values
from controller.statistics import stats

METHODS = ("pca_reconstruction", "domain_classifier")
FOLDS = 3
ONE_HOT = 10  # a categorical feature's commonest categories with their own PCA column
MAX_CODES = 254  # HistGradientBoosting's categories: codes below its 255 bins
# Cross-validation's training sets overlap, which correlates its folds' AUCs: without drift
# they spread wider than the Mann-Whitney variance says (2.14 times its variance, measured).
# Nadeau and Bengio's correction for resampled estimates, 1 + k n_test / n_train (2.5 for
# 3 folds), covers it.
OVERLAP = 1 + FOLDS / (FOLDS - 1)
TOP_FEATURES = 5  # features reported as what the domain classifier relied on
MIN_ROWS = 20  # rows each side needs, at the least
PROBE_ROWS = 1000  # held-out rows per fold on which each feature is shuffled


@dataclass(frozen=True)
class MultivariateDrift:
    """One multivariate detector's verdict on a window."""

    method: str  # "pca_reconstruction" or "domain_classifier"
    value: float  # the mean reconstruction error, or the ROC AUC
    threshold: float
    threshold_source: str  # "calibrated" or "min_effect"
    # The share of windows without drift expected over the threshold. PCA: measured, on
    # resamples apart from those that set the threshold. Domain classifier: nominal, the
    # normal approximation's tail beyond the threshold (the policy's rate when calibrated,
    # less when ``min_auc`` decides), not a measurement.
    false_alarm_rate: float
    drifted: bool
    n_reference: int  # reference rows it compared with (PCA: those it was calibrated on)
    n_current: int
    baseline: float = math.nan  # the value without drift: the reference's error; AUC 0.5
    importance: dict[str, float] = field(default_factory=dict)  # feature: drop in AUC
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """Features as numbers: numeric and boolean values as floats, categories as codes
    (0 the commonest in the reference, ``other[j]`` any value beyond the first
    ``MAX_CODES`` or never seen), NaN when missing."""

    names: list[str]
    ref: np.ndarray  # (m, f)
    cur: np.ndarray  # (n, f)
    categorical: np.ndarray  # (f,) bool
    other: np.ndarray  # (f,) the code of "other" for categorical columns, else 0


def detect(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    kinds: dict[str, str],
    limits: Multivariate,
    false_alarm_rate: float,
    resamples: int,
    seed: int,
) -> tuple[MultivariateDrift, ...]:
    """Both detectors on the features ``kinds`` names (feature: numeric, categorical or
    boolean), the window's rows sampled down to ``limits.sample_size``; nothing for fewer
    than two features."""
    names = [n for n in kinds if n in reference.columns and n in window.columns]
    if len(names) < 2:
        return ()
    rng = np.random.default_rng(seed)
    if len(window) > limits.sample_size:
        window = window.iloc[np.sort(rng.choice(len(window), limits.sample_size, replace=False))]
    table = encode(reference, window, {n: kinds[n] for n in names}, rng)
    return (
        pca_reconstruction(table, limits, false_alarm_rate, resamples, rng),
        domain_classifier(table, limits, false_alarm_rate, rng),
    )


def encode(
    reference: pd.DataFrame, window: pd.DataFrame, kinds: dict[str, str], rng=None
) -> Table:
    """The two samples' features as numbers, categories coded by the reference.

    With ``rng``, a missing value on either side is replaced by a value drawn from the
    reference's present ones: a change in how often values are missing is a data-quality
    finding (``[quality]``), which the detectors would otherwise see as drift.
    """
    names = list(kinds)
    categorical = np.array([kinds[n] == "categorical" for n in names])
    ref, cur, other = [], [], np.zeros(len(names), dtype=int)
    for j, name in enumerate(names):
        if categorical[j]:
            seen = reference[name].dropna().astype(str).value_counts(sort=True)
            known = pd.Index(seen.index[:MAX_CODES])
            other[j] = len(known)
            ref.append(_codes(reference[name], known))
            cur.append(_codes(window[name], known))
        else:  # booleans count as 0 and 1
            ref.append(_floats(reference[name], kinds[name]))
            cur.append(_floats(window[name], kinds[name]))
    ref, cur = np.column_stack(ref), np.column_stack(cur)
    if rng is not None:
        for j in range(len(names)):
            present = ref[~np.isnan(ref[:, j]), j]
            if present.size:
                for side in (ref, cur):
                    gaps = np.isnan(side[:, j])
                    side[gaps, j] = rng.choice(present, gaps.sum())
    return Table(names, ref, cur, categorical, other)


def _codes(series: pd.Series, known: pd.Index) -> np.ndarray:
    codes = known.get_indexer(series.astype(str)).astype(float)
    codes[codes < 0] = len(known)
    codes[series.isna().to_numpy()] = np.nan
    return codes


def _floats(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "boolean":
        series = series.astype(object).map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0})
    x = numeric_values(series)
    return np.where(np.isinf(x), np.nan, x)  # counted out of range by the profile


def design(fit: np.ndarray, table: Table) -> Callable[[np.ndarray], np.ndarray]:
    """The encoding of ``PCA``'s rows learned from ``fit`` (rows of ``table.ref``'s codes):
    a function from coded rows to standardised columns, each feature one unit of variance."""
    steps = []
    for j in range(len(table.names)):
        x = fit[:, j]
        if table.categorical[j]:
            levels = np.arange(min(ONE_HOT, table.other[j]) + 1)
            steps.append((j, levels, *_scale(_one_hot(x, levels))))
        else:
            median = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
            filled = np.where(np.isnan(x), median, x)[:, None]
            steps.append((j, median, *_scale(filled)))

    def apply(rows: np.ndarray) -> np.ndarray:
        out = []
        for j, how, mean, sd in steps:
            x = rows[:, j]
            if table.categorical[j]:
                z = (_one_hot(x, how) - mean) / sd
                out.append(z / math.sqrt(z.shape[1]))
            else:
                out.append((np.where(np.isnan(x), how, x)[:, None] - mean) / sd)
        return np.hstack(out)

    return apply


def _one_hot(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Indicators of the first ``len(levels) - 1`` codes and one of any other code (a
    missing value: none)."""
    top = np.minimum(np.nan_to_num(codes, nan=-1), len(levels) - 1)
    return (top[:, None] == levels[None, :]).astype(float)


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = x.std(axis=0)
    return x.mean(axis=0), np.where(sd > 0, sd, 1.0)


def pca_reconstruction(
    table: Table,
    limits: Multivariate,
    false_alarm_rate: float,
    resamples: int,
    rng: np.random.Generator,
) -> MultivariateDrift:
    """The window's mean PCA reconstruction error against its calibrated threshold."""
    m, n = len(table.ref), len(table.cur)
    if m < 2 * MIN_ROWS or n < MIN_ROWS:
        return _too_few("pca_reconstruction", m, n)
    order = rng.permutation(m)
    fit, held = table.ref[order[: m // 2]], table.ref[order[m // 2 :]]
    encoder = design(fit, table)
    z = encoder(fit)
    center = z.mean(axis=0)
    # The principal axes from the covariance's eigenvectors: a few columns, many rows.
    variances, axes = np.linalg.eigh(np.cov(z - center, rowvar=False))
    variances, axes = np.maximum(variances[::-1], 0.0), axes[:, ::-1]
    share = np.cumsum(variances) / max(float(variances.sum()), 1e-300)
    k = min(int(np.searchsorted(share, limits.pca_variance - 1e-12)) + 1, len(share))
    components = axes[:, :k].T

    def errors(rows: np.ndarray) -> np.ndarray:
        c = encoder(rows) - center
        return np.linalg.norm(c - (c @ components.T) @ components, axis=1)

    base, value = errors(held), float(errors(table.cur).mean())
    mean = float(base.mean())
    # Without drift, the window's mean error differs from the held-out half's by as much
    # as the mean errors of two resamples of that half at their two sizes.
    diffs, b = [], min(resamples, 100)  # as many as ``drift`` bootstraps a feature
    for ref, cur in stats.resample_rows(len(base), len(base), n, 2 * b, rng):
        diffs.append(cur @ base / n - ref @ base / len(base))
    null = mean + np.concatenate(diffs)
    floor = mean * (1 + limits.min_error_increase)
    return _verdict("pca_reconstruction", value, null, floor, false_alarm_rate, len(base), n, mean)


def domain_classifier(
    table: Table, limits: Multivariate, false_alarm_rate: float, rng: np.random.Generator
) -> MultivariateDrift:
    """The cross-validated ROC AUC of a classifier telling the window's rows from the
    reference's, its threshold, and the features it relied on most."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    size = min(len(table.ref), len(table.cur), limits.classifier_rows)
    if size < MIN_ROWS:
        return _too_few("domain_classifier", len(table.ref), len(table.cur))
    # A column the reference sample has no value of cannot be told apart, and the
    # classifier refuses a column with no value at all.
    empty = np.isnan(table.ref).all(axis=0)
    notes: tuple[str, ...] = ()
    if empty.any():
        gone = [n for n, e in zip(table.names, empty, strict=True) if e]
        notes = (f"domain_classifier: left out {', '.join(gone)}: no value in the reference",)
        keep = ~empty
        if not keep.any():
            return replace(
                _too_few("domain_classifier", len(table.ref), len(table.cur)), notes=notes
            )
        table = Table(
            [n for n, k in zip(table.names, keep, strict=True) if k],
            table.ref[:, keep],
            table.cur[:, keep],
            table.categorical[keep],
            table.other[keep],
        )
    x = np.vstack([_pick(table.ref, size, rng), _pick(table.cur, size, rng)])
    y = np.repeat([0, 1], size)
    folds = np.concatenate([rng.permutation(size) % FOLDS, rng.permutation(size) % FOLDS])
    scores = np.empty(len(y))
    # Importance is measured on up to PROBE_ROWS held-out rows per fold, enough to rank.
    probe = np.zeros(len(y), dtype=bool)
    for k in range(FOLDS):
        rows = np.flatnonzero(folds == k)
        probe[rng.choice(rows, min(PROBE_ROWS, len(rows)), replace=False)] = True
    permuted = np.empty((len(table.names), len(y)))
    # One thread: OpenMP on a busy machine makes the fits ten times slower, not faster.
    with threadpool_limits(1, user_api="openmp"):
        for k in range(FOLDS):
            test = folds == k
            model = HistGradientBoostingClassifier(
                max_iter=50,
                max_leaf_nodes=15,
                early_stopping=False,
                categorical_features=table.categorical if table.categorical.any() else None,
                random_state=int(rng.integers(2**31)),
            ).fit(x[~test], y[~test])
            scores[test] = model.predict_proba(x[test])[:, 1]
            held = test & probe
            for j in range(len(table.names)):
                shuffled = x[held]
                shuffled[:, j] = rng.permutation(shuffled[:, j])
                permuted[j, held] = model.predict_proba(shuffled)[:, 1]
    auc = float(roc_auc_score(y, scores))
    on_probe = float(roc_auc_score(y[probe], scores[probe]))
    drop = {
        n: on_probe - float(roc_auc_score(y[probe], permuted[j, probe]))
        for j, n in enumerate(table.names)
    }
    top = dict(sorted(drop.items(), key=lambda kv: -kv[1])[:TOP_FEATURES])
    sd = math.sqrt((2 * size + 1) / (12 * size * size) * OVERLAP)
    calibrated = 0.5 + NormalDist().inv_cdf(1 - false_alarm_rate) * sd
    threshold = float(max(limits.min_auc, calibrated))
    return MultivariateDrift(
        method="domain_classifier",
        value=auc,
        threshold=threshold,
        threshold_source="calibrated" if calibrated > limits.min_auc else "min_effect",
        false_alarm_rate=float(1 - NormalDist(0.5, sd).cdf(threshold)),
        drifted=auc > threshold,
        n_reference=size,
        n_current=size,
        baseline=0.5,
        importance=top,
        notes=notes,
    )


def _pick(x: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) == size else x[np.sort(rng.choice(len(x), size, replace=False))]


def _verdict(method, value, null, floor, false_alarm_rate, n_ref, n_cur, baseline):
    """Threshold from the first half of ``null`` (never below ``floor``); its second half
    estimates the false-alarm rate, as for a feature."""
    half = len(null) // 2
    calibrated = float(np.quantile(null[:half], 1 - false_alarm_rate, method="higher"))
    threshold = float(max(floor, calibrated))
    return MultivariateDrift(
        method=method,
        value=value,
        threshold=threshold,
        threshold_source="calibrated" if calibrated > floor else "min_effect",
        false_alarm_rate=float(np.mean(null[half:] > threshold)),
        drifted=bool(value > threshold),
        n_reference=n_ref,
        n_current=n_cur,
        baseline=float(baseline),
    )


def _too_few(method: str, n_ref: int, n_cur: int) -> MultivariateDrift:
    return MultivariateDrift(
        method=method,
        value=math.nan,
        threshold=math.nan,
        threshold_source="calibrated",
        false_alarm_rate=0.0,
        drifted=False,
        n_reference=n_ref,
        n_current=n_cur,
        notes=(
            f"{method}: too few rows ({n_ref} in the reference, {n_cur} in the window; "
            f"{MIN_ROWS} needed on each side)",
        ),
    )
