"""How a model's attributions moved between the baseline and a window: pure statistics.

Each feature's *share* is its part of the total mean |attribution|. A window's shift is told
by the change of each share (with a bootstrap interval), half the L1 distance between the
share vectors, the Spearman correlation of the mean |attributions| and SageMaker Clarify's
nDCG of the current ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.statistics.stats import shares


def ndcg(baseline: np.ndarray, current: np.ndarray) -> float:
    """SageMaker Clarify's nDCG of the current ranking, weighted by baseline attributions.

    DCG = sum_i a(F'_i) / log2(i + 1) with F' the features ranked by current attribution and
    a the baseline attribution; iDCG the same over the baseline ranking F.
    """
    discount = 1 / np.log2(np.arange(2, baseline.size + 2))
    ideal = np.sort(baseline)[::-1] @ discount
    order = np.argsort(-current, kind="stable")
    return float(baseline[order] @ discount / ideal) if ideal > 0 else 1.0


@dataclass(frozen=True)
class FeatureShift:
    """How one feature's share of the model's attention moved."""

    feature: str
    baseline_mean_abs: float
    mean_abs: float
    baseline_share: float
    share: float
    share_change: float
    ci_low: float
    ci_high: float
    shifted: bool
    loss_change: float | None = None


@dataclass(frozen=True)
class AttributionShift:
    """Attribution shift of one window against the baseline."""

    features: tuple[FeatureShift, ...]
    total_shift: float  # half the L1 distance between the share vectors
    spearman: float
    ndcg: float
    ndcg_alert: bool
    explainer: str
    n_rows: int
    n_loss_rows: int = 0

    @property
    def shifted(self) -> list[str]:
        return [f.feature for f in self.features if f.shifted]

    @property
    def alert(self) -> bool:
        return self.ndcg_alert or bool(self.shifted)


def compare(
    baseline: np.ndarray,
    current: np.ndarray,
    features: tuple[str, ...],
    *,
    explainer: str,
    limits,
    rng: np.random.Generator,
    baseline_loss: np.ndarray | None = None,
    current_loss: np.ndarray | None = None,
) -> AttributionShift:
    """Compare per-row attributions (rows x features) of the baseline and of a window.

    A feature's share of the total mean |SHAP| shifted when the change is at least
    ``limits.min_share_change`` and its bootstrap confidence interval excludes zero.
    """
    from scipy.stats import spearmanr

    a, b = np.abs(baseline), np.abs(current)
    base_mean, cur_mean = a.mean(axis=0), b.mean(axis=0)
    base_share, cur_share = shares(base_mean), shares(cur_mean)
    change = cur_share - base_share
    n_boot = limits.bootstrap
    boot_a = a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
    boot_b = b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    boot = shares(boot_b) - shares(boot_a)
    tail = (1 - limits.confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    loss_change = (
        current_loss.mean(axis=0) - baseline_loss.mean(axis=0)
        if baseline_loss is not None and current_loss is not None
        else None
    )
    rows = tuple(
        FeatureShift(
            feature=f,
            baseline_mean_abs=float(base_mean[i]),
            mean_abs=float(cur_mean[i]),
            baseline_share=float(base_share[i]),
            share=float(cur_share[i]),
            share_change=float(change[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            shifted=bool(abs(change[i]) >= limits.min_share_change and (low[i] > 0 or high[i] < 0)),
            loss_change=None if loss_change is None else float(loss_change[i]),
        )
        for i, f in enumerate(features)
    )
    # Rank correlation is undefined for one feature, or for attributions that are all equal
    # (a model that ignores its inputs): nothing moved, and scipy would warn.
    ranked = len(features) > 1 and np.ptp(base_mean) > 0 and np.ptp(cur_mean) > 0
    rho = spearmanr(base_mean, cur_mean).statistic if ranked else 1.0
    score = ndcg(base_mean, cur_mean)
    return AttributionShift(
        features=rows,
        total_shift=float(np.abs(change).sum() / 2),
        spearman=float(rho) if np.isfinite(rho) else 1.0,
        ndcg=score,
        ndcg_alert=score < limits.min_ndcg,
        explainer=explainer,
        n_rows=len(current),
        n_loss_rows=0 if current_loss is None else len(current_loss),
    )
