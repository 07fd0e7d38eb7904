"""Whether a monitoring cycle calls for retraining, by the policy's ``[retrain]`` rules.

A cycle *calls* for retraining when its results give a reason: drift in a feature that
matters (its attribution share is at least ``min_importance``; without attributions every
drifted feature matters), drift in the predictions, multivariate drift (a relation between
features changed; the domain classifier names the features it relied on), or a relative
worsening of the primary metric (ROC AUC, else accuracy, for classification; RMSE for
regression) beyond ``max_performance_drop`` that sampling noise does not explain
(``Report.performance_drop``). A retrain is *triggered* when the last
``consecutive_cycles`` cycles all called for one and the cooldown after the last trigger is
over, so that one incident does not retrain every hour. The policy's ``cooldown`` says what
it counts: ``event_time``, ``cooldown_hours`` between the ends of the cycles' windows (so a
replay of past batches decides as it did live), or ``labelled_rows``, ``cooldown_rows``
labelled rows logged since. A window without event times (batches logged without a
time-stamp column carry the time they were logged) always counts labelled rows: a replay
logs weeks minutes apart, and their log times say nothing about the time between them. A
trigger whose challenger failed the gate holds nothing back once new labelled rows have
arrived.

A forecast of when the primary metric or the importance-weighted drift share crosses its
floor (``controller.statistics.forecast``) is cited as evidence, never as a reason: when a
cycle calls for retraining and a forecast's mean crosses within ``consecutive_cycles``
cycles, the forecast is added to the reasons' text (``cite``). A forecast alone calls for
nothing: it extrapolates a trend, and a trend of a few noisy cycles is too weak to retrain
on; the measured worsening or drift it foresees will call for retraining when it comes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller.policy import Retrain
from controller.results.report import Report, RetrainDecision, describe
from controller.statistics.forecast import Forecast


@dataclass(frozen=True)
class Cycle:
    """What an earlier cycle decided, as read back from its run."""

    time: datetime
    called: bool
    triggered: bool
    event_time: bool = True  # its window's times were event times, not log times
    labelled_rows: int | None = None  # labelled rows logged by then (None: not recorded)
    gate: str = ""  # the gate of the challenger it triggered: passed | failed | "" (unknown)


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
    for m in report.multivariate:
        if m.drifted:
            out.append(
                f"multivariate drift: {m.method.replace('_', ' ')} {m.value:.3f} above its "
                f"threshold {m.threshold:.3f}"
                + (f" (it relied on {describe(m)})" if m.importance else "")
            )
    drop = report.performance_drop(rules.max_performance_drop)
    if drop:
        out.append(drop)
    return out


def cite(decision: RetrainDecision, forecasts, rules: Retrain) -> RetrainDecision:
    """``decision`` with the forecasts that cross their floor within ``consecutive_cycles``
    cycles added to its reasons as evidence, when it calls for retraining; else as it
    was (its verdict never changes)."""
    near: list[Forecast] = [f for f in forecasts if f.within(rules.consecutive_cycles)]
    if not decision.called or not near:
        return decision
    return replace(
        decision, reasons=decision.reasons + tuple(f"evidence: {f.describe()}" for f in near)
    )


def decide(
    found: list[str],
    earlier: list[Cycle],
    now: datetime,
    rules: Retrain,
    *,
    event_time: bool = True,
    labelled_rows: int | None = None,
    trigger: Cycle | None = None,
) -> RetrainDecision:
    """Trigger or not, given this cycle's reasons and the earlier cycles, newest first;
    ``now`` is the end of this cycle's window, ``event_time`` whether that is an event
    time, ``labelled_rows`` how many labelled rows were logged so far. The cooldown runs
    from ``trigger``, the latest cycle that triggered a retrain (by default the first of
    ``earlier`` that did)."""
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
    last = trigger or next((c for c in earlier if c.triggered), None)
    held = _cooling(last, now, event_time, labelled_rows, rules) if last else ""
    return RetrainDecision(not held, tuple(found), held)


def _cooling(last: Cycle, now, event_time, labelled_rows, rules: Retrain) -> str:
    """Why the cooldown after the trigger ``last`` still holds a retrain back, or ""."""
    new = None
    if labelled_rows is not None and last.labelled_rows is not None:
        new = labelled_rows - last.labelled_rows
    if last.gate == "failed" and new and new > 0:
        return ""  # its challenger failed: new labelled rows deserve another attempt
    rows_over = new is not None and new >= rules.cooldown_rows
    until = last.time + timedelta(hours=rules.cooldown_hours)
    hours_over = now >= until
    since = f"since the retrain triggered at {last.time.isoformat()}"
    wait_rows = f"{rules.cooldown_rows} new labelled rows have arrived {since} ({new} so far)"
    if rules.cooldown == "labelled_rows" and new is not None:
        return "" if rows_over else f"cooling down until {wait_rows}"
    if (event_time and last.event_time) or new is None:
        return "" if hours_over else f"cooling down until {until.isoformat()} ({since})"
    # Log times: hours of them pass only live; a replay logs weeks within minutes, and
    # the labels logged are what tells its cycles apart.
    if rows_over or hours_over:
        return ""
    return (
        f"cooling down until {wait_rows}, or until {until.isoformat()} in the times the "
        "batches were logged (they have no event times)"
    )
