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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from controller.policy import Policy, Rule
from controller.profiles.profile import FeatureProfile, numeric_values
from controller.statistics import stats


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
    rule for each feature; ``observed`` holds the window's profiles when the caller has
    counted them already. Features whose rule says ``ignore`` are left out.
    """
    rules = rules or {n: policy.rule(n, p.kind) for n, p in profiles.items()}
    names = [n for n in profiles if n in window.columns and not rules[n].ignore]
    if not names:
        return []
    rng = np.random.default_rng(policy.seed)
    if observed is None:
        observed = {n: profiles[n].observe(window[n]) for n in names}
    ref_counts = [np.asarray(profiles[n].counts) for n in names]
    cur_counts = [np.asarray(observed[n].counts) for n in names]
    # Features with the same number of bins are scored together, one call per statistic;
    # padding to a common width would change the floored statistics.
    table = {name: np.full(len(names), np.nan) for name in (*stats.BINNED, "chi2")}
    chi2_p = np.full(len(names), np.nan)
    widths = np.array([len(c) for c in ref_counts])
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        ref_m = np.array([ref_counts[i] for i in rows], dtype=float)
        cur_m = np.array([cur_counts[i] for i in rows], dtype=float)
        for name, fn in stats.BINNED.items():
            table[name][rows] = fn(ref_m, cur_m)
        table["chi2"][rows], chi2_p[rows] = stats.chi2_test(ref_m, cur_m)

    numeric = [i for i, n in enumerate(names) if profiles[n].kind == "numeric"]
    ks = np.full(len(names), np.nan)
    wasserstein = np.full(len(names), np.nan)
    ks_p = np.full(len(names), np.nan)
    exact_null: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if numeric:
        cols = [names[i] for i in numeric]
        ref_x = _numeric_matrix(reference, cols)
        cur_x = _numeric_matrix(_sample(window, policy.sample_size, rng), cols)
        d, w = stats.ks_wasserstein(ref_x, cur_x)
        spread = np.array([profiles[c].std or np.nan for c in cols])
        ks[numeric] = d
        with np.errstate(invalid="ignore", divide="ignore"):
            wasserstein[numeric] = w / spread
        ks_p[numeric] = stats.ks_pvalue(
            d, (~np.isnan(ref_x)).sum(axis=0), (~np.isnan(cur_x)).sum(axis=0)
        )
        exact = [j for j, i in enumerate(numeric) if rules[names[i]].statistic in EXACT]
        for j, (d_null, w_null) in _exact_nulls(ref_x, cur_x, exact, policy, rng).items():
            i = numeric[j]
            if rules[names[i]].statistic == "ks":
                exact_null[i] = d_null
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    exact_null[i] = w_null / spread[j]
    table["ks"] = ks
    table["wasserstein"] = wasserstein

    p_values = np.array(
        [ks_p[i] if rules[n].test == "ks" else chi2_p[i] for i, n in enumerate(names)]
    )
    q_values = stats.benjamini_hochberg(p_values)

    results = []
    for i, name in enumerate(names):
        profile, rule = profiles[name], rules[name]
        n_cur = int(cur_counts[i].sum())
        value = float(table[rule.statistic][i])
        null = (
            _split(exact_null[i])
            if i in exact_null
            else _null(profile, rule.statistic, n_cur, policy, rng)
        )
        if rule.threshold is not None:
            threshold, source = rule.threshold, "fixed"
        else:
            # The order statistic just above the quantile keeps the alarm rate at or below it.
            calibrated = float(np.quantile(null[0], 1 - policy.false_alarm_rate, method="higher"))
            threshold = max(rule.min_effect, calibrated)
            source = "calibrated" if calibrated > rule.min_effect else "min_effect"
        notes = []
        if n_cur == 0:
            notes.append("no values in the window")
        drifted = bool(n_cur > 0 and value > threshold and q_values[i] <= policy.fdr)
        applicable = _applicable(profile.kind)
        results.append(
            FeatureDrift(
                feature=name,
                kind=profile.kind,
                n_current=n_cur,
                statistics={s: _num(table[s][i]) if n_cur else math.nan for s in applicable},
                statistic=rule.statistic,
                value=_num(value) if n_cur else math.nan,
                threshold=float(threshold),
                threshold_source=source,
                test=rule.test,
                p_value=_num(p_values[i]),
                q_value=_num(q_values[i]),
                false_alarm_rate=float(np.mean(null[1] > threshold)),
                drifted=drifted,
                notes=tuple(notes),
            )
        )
    return results


def _applicable(kind: str) -> tuple[str, ...]:
    binned = ("psi", "jensen_shannon", "kl", "hellinger")
    return ("ks", "wasserstein", *binned) if kind == "numeric" else ("chi2", *binned)


def _num(x) -> float:
    return float(x) if np.isfinite(x) else float("nan")


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


def _numeric_matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return np.column_stack([numeric_values(frame[c]) for c in cols])


EXACT = ("ks", "wasserstein")
"""Statistics computed on samples of the values, not on the baseline's bins."""


def _null(
    profile: FeatureProfile,
    statistic: str,
    n_cur: int,
    policy: Policy,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent sets of values of a binned ``statistic`` between resamples of the
    baseline's counts, at the sizes of the baseline and of the window.

    The first calibrates the threshold, the second estimates its false-alarm rate.
    """
    b = policy.calibration_resamples
    if n_cur == 0:
        return np.zeros(1), np.zeros(1)
    p = stats.shares(np.asarray(profile.counts))
    ref = rng.multinomial(profile.count, p, size=2 * b)
    cur = rng.multinomial(n_cur, p, size=2 * b)
    return _split(stats.BINNED[statistic](ref, cur))


def _split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampled values in two independent halves: one calibrates, one checks."""
    half = len(values) // 2
    return values[:half], values[half:]


def _exact_nulls(
    ref_x: np.ndarray,
    cur_x: np.ndarray,
    columns: list[int],
    policy: Policy,
    rng: np.random.Generator,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each of ``columns`` (of ``ref_x``), ``2 b`` values of the KS statistic and of the
    raw Wasserstein-1 distance between bootstrap resamples of the
    reference sample's rows, at the reference sample's size and at the number of values
    the window's sample holds; ``b`` is at most 100, which bounds the cost.

    One draw of rows serves every column with the same number of values in the window.
    """
    b = min(policy.calibration_resamples, 100)
    m = ref_x.shape[0]
    present_ref = (~np.isnan(ref_x)).sum(axis=0)
    present_cur = (~np.isnan(cur_x)).sum(axis=0)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    groups: dict[int, list[int]] = {}
    for j in columns:
        if present_ref[j] == 0 or present_cur[j] == 0:
            out[j] = (np.zeros(2), np.zeros(2))
            continue
        # Rows drawn so that a resample holds as many values as the window's sample.
        rows = max(1, round(present_cur[j] * m / present_ref[j]))
        groups.setdefault(rows, []).append(j)
    for rows, group in groups.items():
        d, w = stats.resampled_ks_wasserstein(ref_x[:, group], m, rows, 2 * b, rng)
        for k, j in enumerate(group):
            out[j] = (d[:, k], w[:, k])
    return out
