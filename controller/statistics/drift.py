"""Per-feature drift verdicts that hold at any sample size.

A feature drifts only when both of these hold:

1. its effect size (PSI, Jensen-Shannon, ...) exceeds a threshold. The threshold is the
   larger of the policy's ``min_effect`` and the ``1 - false_alarm_rate`` quantile of the
   same statistic between two resamples of the baseline itself, drawn at the sizes of the
   reference and of the production window. Small windows thus get thresholds above their
   noise, large windows fall back to ``min_effect``, the smallest change worth an alert;
2. its test (KS or chi-square), corrected for multiple comparisons across features with
   Benjamini-Hochberg, rejects "same distribution" at level ``fdr``.

The expected false-alarm rate of each verdict is estimated on a fresh set of resamples.
Nothing here names a statistic: what each needs, where it applies and how its resamples
are drawn comes from its declaration in ``controller.statistics.catalog``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from controller.policy import Policy, Rule
from controller.profiles.profile import FeatureProfile, numeric_values
from controller.statistics import catalog, stats


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict for one feature, with every statistic computed for it."""

    feature: str
    kind: str
    n_current: int
    statistics: dict[str, float]
    statistic: str
    value: float
    threshold: float
    threshold_source: str  # "calibrated", "min_effect" or "fixed"
    test: str
    p_value: float
    q_value: float
    false_alarm_rate: float
    drifted: bool
    notes: tuple[str, ...] = field(default=())


def judge(
    profiles: dict[str, FeatureProfile],
    reference: pd.DataFrame,
    window: pd.DataFrame,
    policy: Policy,
    rules: dict[str, Rule] | None = None,
    observed: dict[str, FeatureProfile] | None = None,
) -> list[FeatureDrift]:
    """Verdicts for every profiled column present in ``window``, as one family of tests.

    ``reference`` is the baseline's reference sample; ``rules`` defaults to the policy's
    rule for each feature. ``window`` holds the window's rows, or a uniform sample of them
    (a window merged from batch profiles); ``observed`` holds the counts of all its rows in
    the baseline's bins (default: those of ``window``). Each statistic is calibrated at
    the n it saw: a binned one at its column's count, one on raw values at the number of
    values in ``window`` sampled down to ``sample_size`` rows. Features whose rule says
    ``ignore`` are left out.
    """
    rules = rules or {n: policy.rule(n, p.kind) for n, p in profiles.items()}
    names = [n for n in profiles if n in window.columns and not rules[n].ignore]
    if not names:
        return []
    # One generator, drawn in a fixed order (window sample, bootstrap, multinomial
    # resamples), so that a seed gives the same verdicts.
    rng = np.random.default_rng(policy.seed)
    if observed is None:
        observed = {n: profiles[n].observe(window[n]) for n in names}
    data = _inputs(names, profiles, observed, reference, window, policy.sample_size, rng)
    values, p_values = _measure(data)
    deciding = [catalog.STATISTICS[rules[n].statistic] for n in names]
    nulls = _calibrate(data, deciding, policy.calibration_resamples, rng)
    tested = np.array([p_values[rules[n].test][i] for i, n in enumerate(names)])
    q_values = stats.benjamini_hochberg(tested)
    return [
        _verdict(data, i, rules[name], values, tested[i], q_values[i], nulls[i], policy)
        for i, name in enumerate(names)
    ]


@dataclass(frozen=True)
class _Inputs:
    """What the statistics read, for the features judged (in ``names`` order)."""

    names: list[str]
    profiles: list[FeatureProfile]
    ref_counts: list[np.ndarray]
    cur_counts: list[np.ndarray]
    columns: list[int]  # the features with raw values, as columns of the samples below
    ref_x: np.ndarray  # the reference sample's values, (rows, len(columns)), NaN if missing
    cur_x: np.ndarray  # the window's (sampled) values, likewise
    spread: np.ndarray  # the baseline's standard deviation of each column, NaN if 0

    def n_current(self, i: int) -> int:
        return int(self.cur_counts[i].sum())


def _inputs(
    names: list[str],
    profiles: dict[str, FeatureProfile],
    observed: dict[str, FeatureProfile],
    reference: pd.DataFrame,
    window: pd.DataFrame,
    sample_size: int,
    rng: np.random.Generator,
) -> _Inputs:
    """Counts of every feature; raw values (the window's sampled down to ``sample_size``
    rows) of those whose kind a statistic on values applies to."""
    features = [profiles[n] for n in names]
    statistics = catalog.STATISTICS.values()
    with_values = {k for s in statistics if s.needs == "values" for k in s.kinds + s.test_kinds}
    columns = [i for i, p in enumerate(features) if p.kind in with_values]
    cols = [names[i] for i in columns]
    if columns:
        ref_x = _numeric_matrix(reference, cols)
        cur_x = _numeric_matrix(_sample(window, sample_size, rng), cols)
    else:
        ref_x = cur_x = np.empty((0, 0))
    return _Inputs(
        names=names,
        profiles=features,
        ref_counts=[np.asarray(p.counts) for p in features],
        cur_counts=[np.asarray(observed[n].counts) for n in names],
        columns=columns,
        ref_x=ref_x,
        cur_x=cur_x,
        spread=np.array([features[i].std or np.nan for i in columns]),
    )


def _measure(data: _Inputs) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every declared statistic, and every test's p-value, for every feature that has its
    input (NaN elsewhere): ``(values, p_values)`` by statistic name."""
    n = len(data.names)
    values, p_values = {}, {}
    # Features with the same number of bins are scored together, one call per statistic;
    # padding to a common width would change the floored statistics.
    widths = np.array([len(c) for c in data.ref_counts])
    by_width = []
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        ref_m = np.array([data.ref_counts[i] for i in rows], dtype=float)
        cur_m = np.array([data.cur_counts[i] for i in rows], dtype=float)
        by_width.append((rows, ref_m, cur_m))
    for s in catalog.STATISTICS.values():
        value, p = np.full(n, np.nan), np.full(n, np.nan)
        if s.needs == "counts":
            for rows, ref_m, cur_m in by_width:
                value[rows] = s.compute(ref_m, cur_m)
                if s.p_value is not None:
                    p[rows] = s.p_value(ref_m, cur_m, value[rows])
        elif data.columns:
            value[data.columns] = s.compute(data.ref_x, data.cur_x, data.spread)
            if s.p_value is not None:
                p[data.columns] = s.p_value(data.ref_x, data.cur_x, value[data.columns])
        values[s.name] = value
        if s.p_value is not None:
            p_values[s.name] = p
    return values, p_values


def _calibrate(
    data: _Inputs, deciding: list[catalog.Statistic], resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """For each feature, ``2 b`` values of its deciding statistic without drift, sampled
    as its declaration says; the bootstrap nulls are drawn first, then the multinomial."""
    nulls: dict[int, np.ndarray] = {}
    nulls.update(_bootstrap_nulls(data, deciding, resamples, rng))
    nulls.update(_multinomial_nulls(data, deciding, resamples, rng))
    return [nulls[i] for i in range(len(data.names))]


def _verdict(
    data: _Inputs,
    i: int,
    rule: Rule,
    values: dict[str, np.ndarray],
    p_value: float,
    q_value: float,
    null: np.ndarray,
    policy: Policy,
) -> FeatureDrift:
    """Feature ``i``'s threshold (fixed, or calibrated on the first half of its null and
    never below ``min_effect``) and verdict; the null's second half estimates its false-alarm
    rate."""
    profile, n_cur = data.profiles[i], data.n_current(i)
    value = float(values[rule.statistic][i])
    calibrate, check = _split(null)
    if rule.threshold is not None:
        threshold, source = rule.threshold, "fixed"
    else:
        # The order statistic just above the quantile keeps the alarm rate at or below it.
        calibrated = float(np.quantile(calibrate, 1 - policy.false_alarm_rate, method="higher"))
        threshold = max(rule.min_effect, calibrated)
        source = "calibrated" if calibrated > rule.min_effect else "min_effect"
    return FeatureDrift(
        feature=data.names[i],
        kind=profile.kind,
        n_current=n_cur,
        statistics={
            s: _num(values[s][i]) if n_cur else math.nan for s in catalog.applicable(profile.kind)
        },
        statistic=rule.statistic,
        value=_num(value) if n_cur else math.nan,
        threshold=float(threshold),
        threshold_source=source,
        test=rule.test,
        p_value=_num(p_value),
        q_value=_num(q_value),
        false_alarm_rate=float(np.mean(check > threshold)),
        drifted=bool(n_cur > 0 and value > threshold and q_value <= policy.fdr),
        notes=("no values in the window",) if n_cur == 0 else (),
    )


def _num(x) -> float:
    return float(x) if np.isfinite(x) else float("nan")


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


def _numeric_matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The columns' values; infinities, which the binned statistics count out of range,
    are left out of those on raw values (as missing values are)."""
    x = np.column_stack([numeric_values(frame[c]) for c in cols])
    x[np.isinf(x)] = np.nan
    return x


def _split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampled values in two independent halves: one calibrates, one checks."""
    half = len(values) // 2
    return values[:half], values[half:]


def _multinomial_nulls(
    data: _Inputs, deciding: list[catalog.Statistic], resamples: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """For each feature whose statistic has a multinomial null, ``2 b`` values of it between
    resamples of the baseline's counts, at the sizes of the baseline and of the window."""
    out = {}
    for i, s in enumerate(deciding):
        if s.null != "multinomial":
            continue
        n_cur = data.n_current(i)
        if n_cur == 0:
            out[i] = np.zeros(2)
            continue
        profile = data.profiles[i]
        p = stats.shares(np.asarray(profile.counts))
        ref = rng.multinomial(profile.count, p, size=2 * resamples)
        cur = rng.multinomial(n_cur, p, size=2 * resamples)
        out[i] = s.compute(ref, cur)
    return out


def _bootstrap_nulls(
    data: _Inputs, deciding: list[catalog.Statistic], resamples: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """For each feature whose statistic has a bootstrap null, ``2 b`` values of it between
    bootstrap resamples of the reference sample's rows, at the reference sample's size and
    at the number of values the window's sample holds; ``b`` is at most 100, which bounds
    the cost. A column without values on either side gets zeros: it has no verdict.

    One draw of rows serves every column with the same number of values in the window,
    whatever its statistic.
    """
    b = min(resamples, 100)
    m = data.ref_x.shape[0]
    present_ref = (~np.isnan(data.ref_x)).sum(axis=0)
    present_cur = (~np.isnan(data.cur_x)).sum(axis=0)
    out: dict[int, np.ndarray] = {}
    groups: dict[int, list[int]] = {}
    for j, i in enumerate(data.columns):
        if deciding[i].null != "bootstrap":
            continue
        if present_ref[j] == 0 or present_cur[j] == 0:
            out[i] = np.zeros(2)
            continue
        # Rows drawn so that a resample holds as many values as the window's sample.
        rows = max(1, round(present_cur[j] * m / present_ref[j]))
        groups.setdefault(rows, []).append(j)
    for rows, group in groups.items():
        by_statistic: dict[str, list[int]] = {}
        for j in group:
            by_statistic.setdefault(deciding[data.columns[j]].name, []).append(j)
        resampled = [
            (cols, catalog.STATISTICS[name].resampled(data.ref_x[:, cols], data.spread[cols]))
            for name, cols in by_statistic.items()
        ]
        parts: dict[int, list[np.ndarray]] = {j: [] for j in group}
        for ref, cur in stats.resample_rows(m, m, rows, 2 * b, rng):
            for cols, of_draws in resampled:
                drawn = of_draws(ref, cur)
                for k, j in enumerate(cols):
                    parts[j].append(drawn[:, k])
        for j, chunks in parts.items():
            out[data.columns[j]] = np.concatenate(chunks)
    return out
