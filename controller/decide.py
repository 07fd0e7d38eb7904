"""Whether a monitoring cycle calls for retraining, by the policy's ``[retrain]`` rules.

A cycle *calls* for retraining when its results give a reason: drift in a feature that
matters (its attribution share is at least ``min_importance``; without attributions every
drifted feature matters), drift in the predictions, or a relative worsening of the primary
metric (ROC AUC, else accuracy, for classification; RMSE for regression) beyond
``max_performance_drop``. A retrain is *triggered* when the last ``consecutive_cycles``
cycles all called for one and none was triggered within ``cooldown_hours``, measured in
window time (the end of each cycle's window): one incident does not retrain every hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.policy import Retrain
from controller.report import Report


@dataclass(frozen=True)
class Cycle:
    """What an earlier cycle decided, as read back from its run."""

    time: datetime
    called: bool
    triggered: bool


@dataclass(frozen=True)
class RetrainDecision:
    triggered: bool
    reasons: tuple[str, ...]  # why the results call for retraining; empty when they do not
    held_back: str = ""  # why a called-for retrain was not triggered

    @property
    def called(self) -> bool:
        return bool(self.reasons)


def reasons(report: Report, shares: dict[str, float] | None, rules: Retrain) -> list[str]:
    """The reasons this cycle's results give for retraining."""
    out = []
    for feature in report.drifted:
        share = (shares or {}).get(feature)
        if share is None or share >= rules.min_importance:
            out.append(
                f"drift in {feature}"
                + (f" (attribution share {share:.2f})" if share is not None else "")
            )
    if report.prediction and report.prediction.drifted:
        out.append("drift in the model's predictions")
    for metric, greater in (("roc_auc", True), ("accuracy", True), ("rmse", False)):
        now, base = report.performance.get(metric), report.baseline_performance.get(metric)
        if now is None or not base:
            continue
        drop = (base - now) / abs(base) if greater else (now - base) / abs(base)
        if drop > rules.max_performance_drop:
            out.append(
                f"{metric} worse by {drop:.1%} than at the baseline ({now:.4f} against {base:.4f})"
            )
        break  # one primary metric
    return out


def decide(
    found: list[str], earlier: list[Cycle], now: datetime, rules: Retrain
) -> RetrainDecision:
    """Trigger or not, given this cycle's reasons and the earlier cycles, newest first."""
    if not found:
        return RetrainDecision(False, ())
    streak = 1
    for cycle in earlier:
        if not cycle.called:
            break
        streak += 1
    if streak < rules.consecutive_cycles:
        return RetrainDecision(
            False, tuple(found), f"{streak} of {rules.consecutive_cycles} cycles in a row so far"
        )
    last = next((c.time for c in earlier if c.triggered), None)
    until = last + timedelta(hours=rules.cooldown_hours) if last else None
    if until and now < until:
        return RetrainDecision(
            False,
            tuple(found),
            f"cooling down until {until.isoformat()} "
            f"(a retrain was triggered at {last.isoformat()})",
        )
    return RetrainDecision(True, tuple(found))
