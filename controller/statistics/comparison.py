"""Is the challenger better than the champion on the same rows? A gate with a real test.

The gate speaks MLflow's ``MetricThreshold`` vocabulary (``greater_is_better``,
``min_absolute_change``, ``min_relative_change``) and adds what MLflow lacks: a confidence
interval of the paired difference (challenger minus champion, signed so that positive is
better). ROC AUC uses DeLong's method; every other metric a paired bootstrap over rows.
The challenger passes a metric only when the lower bound of that interval clears the
required change; a guardrail metric only needs to stay within its tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from controller.statistics.performance import METRICS, computable, metric


@dataclass(frozen=True)
class Threshold:
    """When a metric counts as improved (MLflow's ``MetricThreshold`` names)."""

    metric: str
    greater_is_better: bool
    min_absolute_change: float = 0.0
    min_relative_change: float = 0.0

    def required(self, champion: float) -> float:
        """The improvement (positive = better) the challenger must show."""
        return max(self.min_absolute_change, self.min_relative_change * abs(champion))


@dataclass(frozen=True)
class Comparison:
    """One metric on the same rows: champion, challenger and the signed improvement."""

    metric: str
    champion: float
    challenger: float
    improvement: float  # challenger - champion, positive when the challenger is better
    ci_low: float
    ci_high: float
    method: str  # "delong" or "bootstrap"


def delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """AUC of scores ``a`` and ``b`` on labels ``y``, and the variance of AUC(b) - AUC(a).

    DeLong, DeLong & Clarke-Pearson (1988), with the placement values of each score.
    """
    y = np.asarray(y).astype(bool)
    pos, neg = y.sum(), (~y).sum()
    aucs, v10, v01 = [], [], []
    for s in (np.asarray(a, float), np.asarray(b, float)):
        x, z = s[y], s[~y]
        # Placements: share of negatives below each positive (ties count half), and back.
        below = np.searchsorted(np.sort(z), x, "left") + np.searchsorted(np.sort(z), x, "right")
        p10 = below / (2 * neg)
        above = np.searchsorted(np.sort(x), z, "left") + np.searchsorted(np.sort(x), z, "right")
        p01 = 1 - above / (2 * pos)
        aucs.append(p10.mean())
        v10.append(p10)
        v01.append(p01)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / pos + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / neg
    return float(aucs[0]), float(aucs[1]), float(max(var, 0.0))


def compare(
    task: str,
    y: np.ndarray,
    champion: tuple[np.ndarray, np.ndarray | None],
    challenger: tuple[np.ndarray, np.ndarray | None],
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[Comparison]:
    """Every metric of ``task`` for both models on the same rows, with intervals.

    ``champion`` and ``challenger`` are (predictions, positive-class scores or None); for
    classification, labels and predictions are 0/1.
    """
    y = np.asarray(y)
    z = norm.ppf(0.5 + confidence / 2)
    scored = champion[1] is not None and challenger[1] is not None
    names = computable(task, scored)
    boot = _paired_bootstrap(
        [n for n in names if n != "roc_auc"], y, champion, challenger, n_boot, seed
    )
    out = []
    for name in names:
        sign = 1.0 if METRICS[task][name] else -1.0
        base = float(metric(name, y, *champion))
        new = float(metric(name, y, *challenger))
        if name == "roc_auc":
            half = z * np.sqrt(delong(y, champion[1], challenger[1])[2])
            low, high, method = new - base - half, new - base + half, "delong"
        else:
            tail = (1 - confidence) / 2 * 100
            low, high = np.percentile(sign * boot[name], [tail, 100 - tail])
            method = "bootstrap"
        out.append(
            Comparison(name, base, new, sign * (new - base), float(low), float(high), method)
        )
    return out


def _paired_bootstrap(names, y, champion, challenger, n_boot, seed) -> dict[str, np.ndarray]:
    """``n_boot`` resampled differences challenger - champion of each metric, both models
    on the same resampled rows.

    Resamples are drawn in blocks of about 4 million row indices, so memory stays flat
    however many rows are held out.
    """
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // len(y))
    out = {name: [] for name in names}
    for start in range(0, n_boot, block):
        rows = rng.integers(0, len(y), size=(min(block, n_boot - start), len(y)))
        for name in names:
            diff = metric(name, y, *challenger, rows) - metric(name, y, *champion, rows)
            out[name].append(diff)
    return {name: np.concatenate(parts) for name, parts in out.items()}


@dataclass(frozen=True)
class Decision:
    passed: bool
    reasons: tuple[str, ...]


def gate(
    comparisons: list[Comparison], primary: Threshold, guardrails: dict[str, float]
) -> Decision:
    """Pass when the primary metric's lower bound clears the required improvement and no
    guardrail metric got worse by more than its tolerance (in the metric's own units)."""
    by_name = {c.metric: c for c in comparisons}
    reasons = []
    main = by_name.get(primary.metric)
    if main is None:
        return Decision(False, (f"{primary.metric} could not be computed on these rows",))
    need = primary.required(main.champion)
    if main.ci_low <= need:
        reasons.append(
            f"{primary.metric}: improvement {main.improvement:+.4f}, lower bound "
            f"{main.ci_low:+.4f} does not clear the required {need:+.4f}"
        )
    for name, tolerance in guardrails.items():
        c = by_name.get(name)
        if c is not None and c.improvement < -tolerance:
            reasons.append(
                f"guardrail {name} got worse by {-c.improvement:.4f} (tolerance {tolerance})"
            )
    return Decision(not reasons, tuple(reasons))
