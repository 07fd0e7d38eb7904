"""What kind of problem a cycle found: one triage class, with the evidence behind it.

A drift engineer's first question about an alarm is what it means. The classes, in the
order they are decided:

- ``data_quality``: a pipeline or system fault. A column missing or of another type, a
  surge of missing values or of unseen categories, infinite values, most values outside
  the baseline's range (a unit change), or a collapse in row volume. Page the data team;
  never retrain on it.
- ``concept_drift``: the model's measured performance got worse (``Report.performance_drop``:
  beyond ``max_performance_drop`` and beyond sampling noise) while its inputs are quiet,
  or worse than the input shift explains (below the band of the performance estimated
  from the inputs of the same labelled rows). The loss its features carry names where the
  drop comes from; it never makes one. Retrain on new data.
- ``covariate_shift``: an input alarm (features, predictions, or the multivariate
  detectors) that persisted over ``[retrain] consecutive_cycles`` cycles in a row (a
  ``data_quality`` cycle breaks the row: its alarms may be the fault's), or that comes
  with a measured drop in performance, which confirms it. Retrain if the shifted features
  matter.
- ``emerging``: an input alarm seen in fewer cycles in a row than that, with no measured
  drop. Watch it.
- ``transient``: the cycle after an emerging alarm that did not persist. It was a blip.
- ``ok``: nothing to do.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from controller import tracking
from controller.policy import Retrain
from controller.results.report import Report, Triage
from controller.statistics import performance

TRIAGE = tracking.TAG + "triage"
INPUT_ALARM = tracking.TAG + "input_alarm"  # "true" when a cycle's inputs alarmed
ROWS = "window.rows"  # the metric of a cycle's rows
RETRAINS_ON = ("covariate_shift", "concept_drift")
VOLUME_FLOOR = 0.1  # a window of under a tenth of the recent median rows has collapsed
# Values beyond the baseline's range alert at [quality] max_out_of_range_share; a real shift
# pushes some there (incomes fall, loans grow). Most of them there is a pipeline's doing: a
# unit or scale change.
UNIT_CHANGE = 0.5


@dataclass(frozen=True)
class Earlier:
    """What an earlier cycle's run says about its triage, newest first."""

    kind: str
    input_alarm: bool
    rows: float | None = None

    @classmethod
    def of(cls, run) -> Earlier:
        tags, metrics = run.data.tags, run.data.metrics
        return cls(tags.get(TRIAGE, ""), tags.get(INPUT_ALARM) == "true", metrics.get(ROWS))


def triage(report: Report, earlier: list[Earlier], rules: Retrain) -> Triage:
    """The class of this cycle's findings given the earlier cycles (newest first)."""
    faults = [
        f"{q.check.replace('_', ' ')} on {q.feature!r}"
        + (f": {q.value:.3g} (limit {q.threshold:g})" if q.threshold is not None else "")
        for q in report.quality_alerts
        if q.check != "out_of_range_share" or q.value >= UNIT_CHANGE
    ]
    recent = [e.rows for e in earlier[:5] if e.rows]
    if len(recent) >= 2 and report.n_rows < VOLUME_FLOOR * statistics.median(recent):
        faults.append(
            f"row volume collapsed: {report.n_rows} rows against a median of "
            f"{statistics.median(recent):.0f} over the last {len(recent)} cycles"
        )
    if faults:
        return Triage("data_quality", tuple(faults))
    inputs = input_alarms(report)
    worse = _worse(report, rules)
    if worse and (not inputs or _beyond_estimate(report)):
        quiet = "the inputs are quiet" if not inputs else "beyond what the input shift explains"
        return Triage("concept_drift", (*worse, quiet, *inputs))
    if inputs:
        streak = 1
        for e in earlier:
            # A data-quality cycle's alarms may be the fault's doing: no evidence of a shift.
            if not e.input_alarm or e.kind == "data_quality":
                break
            streak += 1
        seen = f"input alarms in {streak} cycle{'s' if streak > 1 else ''} in a row"
        if worse:  # a measured drop confirms the alarm: no need to wait for it to persist
            return Triage("covariate_shift", (*inputs, seen, *worse))
        if streak >= rules.consecutive_cycles:
            return Triage("covariate_shift", (*inputs, seen))
        return Triage("emerging", (*inputs, f"{seen}; {rules.consecutive_cycles} needed"))
    if earlier and earlier[0].kind == "emerging":
        return Triage("transient", ("the alarm of the cycle before did not persist",))
    return Triage("ok", ())


def input_alarms(report: Report) -> list[str]:
    """What alarmed in the model's inputs: features, predictions, and drift no single
    feature shows."""
    out = [f"{f} drifted" for f in report.drifted]
    if report.prediction and report.prediction.drifted:
        out.append("the model's predictions drifted")
    out += [f"{m} alarmed (drift no single feature shows)" for m in report.multivariate_drifted]
    return out


def _worse(report: Report, rules: Retrain) -> list[str]:
    """Evidence that the model got worse (``Report.performance_drop``), and which features'
    loss rose most (the loss attribution has no calibrated threshold of its own: it
    explains a drop, it does not make one)."""
    drop = report.performance_drop(rules.max_performance_drop)
    if not drop:
        return []
    out = [drop]
    a = report.attribution
    if a is not None:
        rising = sorted(
            (f for f in a.features if f.loss_change is not None and f.loss_change > 0),
            key=lambda f: -f.loss_change,
        )[:3]
        if rising:
            out.append("the loss rose most on " + ", ".join(f.feature for f in rising))
    return out


def _beyond_estimate(report: Report) -> bool:
    """Whether the measured primary metric is below the band of the performance estimated
    from the inputs of the same labelled rows (the drop covariate shift explains); False
    without an estimate."""
    metric = report.primary_metric
    band = report.estimated_labelled.get(metric) if metric else None
    if band is None or not performance.greater_is_better(metric):
        return False
    return report.performance[metric] < band[1]
