"""The controller's cycle: reconcile the registry, monitor, and retrain when called for.

``monitor`` takes the champion, its baseline and a production window, and logs one MLflow
run of findings. ``cycle`` is the loop a scheduler runs: carry out what was decided in the
registry, monitor unless nothing is new since the last cycle, and retrain (evaluate,
register, promote as the policy says) when the cycle triggered it.

Findings are not failures: drift, a failed gate, or a retrain that must wait for data
(too few labelled rows yet) are recorded on the monitor run, and the cycle succeeds. A
waiting retrain is tried again by the next cycle with new batches or labels: that cycle
calls for retraining whatever its own results say, until the retrain has run.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from controller import alerts, tracking
from controller._errors import DriftctlError, ModelLoadError, NotEnoughDataError
from controller._timing import phase
from controller.inputs.model import predict
from controller.loop import registry
from controller.loop.assess import assess
from controller.loop.claim import Claim, Held, claim, released_on_error
from controller.loop.decide import Cycle, cite, decide, reasons
from controller.loop.forecast import outlook
from controller.loop.triage import (
    INPUT_ALARM,
    RETRAINS_ON,
    TRIAGE,
    Earlier,
    input_alarms,
    triage,
)
from controller.loop.window import (
    VERSION,
    Logged,
    load_profiled_window,
    select_runs,
    window_key,
)
from controller.policy import Policy
from controller.profiles.baseline import PREDICTION, SCORE
from controller.results.html import attribution_chart, render_html
from controller.results.naming import name_map
from controller.results.report import Report
from controller.statistics.performance import primary

if TYPE_CHECKING:
    from controller.results.challenger import RetrainResult
    from controller.tracking import ModelVersion

SUMMARY = "driftctl/summary.json"
NAMES = "driftctl/metric_names.json"
CHART = "driftctl/attribution_shift.svg"
REPORT = "driftctl/report.html"
# "true" when this cycle triggered a retrain; "waiting" when the retrain could not run yet
# for want of data (the reason in WAITING), "failed" when it could not be carried out.
RETRAIN = tracking.TAG + "retrain"
WAITING = tracking.TAG + "retrain_waiting"
WINDOW_KEY = tracking.TAG + "window_key"
RETRAIN_CALLED = tracking.TAG + "retrain_called"  # "true" when its results called for one
EVENT_TIME = tracking.TAG + "event_time"  # "false" when its window's times are log times
LABELLED_ROWS = tracking.TAG + "labelled_rows"  # labelled rows logged by then


def monitor(
    name: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    last: int | None = None,
    since: str | None = None,
    until: str | None = None,
    policy: Policy | None = None,
) -> Report:
    """Run one cycle for the registered model ``name`` and log it; returns the report.

    Everything is read and computed before the cycle's run is created, so bad input leaves
    nothing behind in MLflow.
    """
    return _monitor(
        name, alias=alias, version=version, last=last, since=since, until=until, policy=policy
    )[0]


def _monitor(
    name,
    *,
    alias=None,
    version=None,
    last=None,
    since=None,
    until=None,
    policy=None,
    logged=None,
    claim=None,
):
    """``monitor``, also returning what its HTML page was made of (for ``cycle``, which
    found the ``logged`` runs already, and ``claim``s the window before logging it)."""
    policy = policy or Policy()
    with phase("MLflow reads"):
        mv = tracking.resolve_version(name, version=version, alias=alias)
        baseline, baseline_run = tracking.load_baseline(mv)
        logged = logged or Logged.find(name)
        window = load_profiled_window(
            name, baseline, mv.version, last=last, since=since, until=until, logged=logged
        )
    notes: tuple[str, ...] = window.unscored
    try:
        with phase("model load"):
            model = tracking.load_model(mv)
    except ModelLoadError as exc:  # drift and quality need no model: go on, saying why
        model = None
        notes += (
            f"the model could not be loaded, so predictions are as served and there "
            f"are no attributions: {exc.__cause__}",
        )
    with phase("scoring"):
        rows = window.rows
        if model is not None and rows is not None:
            rows = _scored_by(rows, model, mv.version, baseline)
    with phase("profiles"):
        observed = window.observe(baseline, policy, rows)
    # Batches hold only the features and the columns named when they were logged.
    meta = tuple(c for c in observed.sample.columns if c not in baseline.features)
    report = assess(baseline, observed, policy, meta_columns=meta, model=model)
    with phase("MLflow reads"):
        # The streaks need the latest consecutive_cycles - 1 cycles of this version (the
        # triage's volume check, five), the cooldown the last that triggered a retrain, and
        # the gate of the challenger that one built. The forecast's chart reads every version.
        n = max(policy.retrain.consecutive_cycles, 5)
        recent = tracking.latest_runs(name, "monitor", n)
        mine = tracking.latest_runs(
            name, "monitor", n, f"tags.`{tracking.VERSION}` = '{mv.version}'"
        )
        # Of whatever version: a retrain the previous champion triggered built this one, and
        # the cooldown after it still holds, or a promotion would retrain again at once.
        trigger = tracking.latest_runs(name, "monitor", 1, f"tags.`{RETRAIN}` = 'true'")
        gate = registry.gate_of(name, trigger[0].info.run_id) if trigger else ""
        labelled = window.labelled_rows
    event_time = window.event_times

    def cycle_of(run) -> Cycle:
        tags = run.data.tags
        return Cycle(
            time=datetime.fromisoformat(tags[tracking.TAG + "window_end"]),
            called=tags.get(RETRAIN_CALLED) == "true",
            triggered=tags.get(RETRAIN) == "true",
            event_time=tags.get(EVENT_TIME) != "false",
            labelled_rows=int(tags[LABELLED_ROWS]) if LABELLED_ROWS in tags else None,
        )

    earlier = [cycle_of(r) for r in mine]
    last_trigger = replace(cycle_of(trigger[0]), gate=gate) if trigger else None
    with phase("forecast"):  # the series read once: for the forecast and the page's chart
        chart, forecasts = outlook(name, mv.version, recent, report, policy.retrain)
    report = replace(report, forecasts=forecasts)
    found = reasons(report, baseline.attribution.get("share"), policy.retrain)
    waiting = _still_waiting(recent[0] if recent else None, mv.version)
    classed = triage(report, [Earlier.of(r) for r in mine], policy.retrain)
    # Time is the windows' event time, so a replay of past batches decides as it did live
    # (without event times, the cooldown counts labelled rows instead).
    decision = decide(
        found + waiting,
        earlier,
        window.end.to_pydatetime(),
        policy.retrain,
        event_time=event_time,
        labelled_rows=labelled,
        trigger=last_trigger,
    )
    decision = cite(decision, forecasts, policy.retrain)
    if decision.triggered and classed.kind not in RETRAINS_ON and not waiting:
        why = (
            "the input alarm has not persisted yet; retraining waits for it"
            if classed.kind == "emerging"
            else "which retraining does not answer"
        )
        decision = replace(decision, triggered=False, held_back=f"triaged {classed.kind}, {why}")
    report = replace(
        report,
        notes=report.notes + notes,
        retrain=decision,
        triage=classed,
        context={
            "model": name,
            "version": str(mv.version),
            "alias": alias or ("" if version else "champion"),
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "batches": ",".join(window.run_ids),
            "baseline_run_id": baseline_run,
            "window_key": window_key(name, mv.version, window.run_ids, policy, logged),
            "event_time": str(event_time).lower(),
            "labelled_rows": str(labelled),
        },
    )
    with phase("logging"):
        end_ms = int(window.end.timestamp() * 1000)
        run_id, page = _log(report, mv, end_ms, baseline, observed.sample, chart, claim)
    return replace(report, context={**report.context, "run_id": run_id}), page


def _still_waiting(last, version) -> list[str]:
    """A retrain the ``last`` cycle triggered but could not run yet, for want of data, is
    called for again, as long as the champion it was for is still the one monitored."""
    if last is None or last.data.tags.get(RETRAIN) != "waiting":
        return []
    if last.data.tags.get(tracking.VERSION) != str(version):
        return []
    why = last.data.tags.get(WAITING, "")
    return [
        f"the retrain triggered by monitor run {last.info.run_id} waits"
        + (f" ({why})" if why else "")
    ]


def _scored_by(frame, model, version, baseline):
    """The window with predictions of ``version``: rows another version scored (before a
    promotion, or when monitoring a challenger) are scored again."""
    other = (frame[VERSION] != str(version)).to_numpy()
    if not other.any():
        return frame
    preds = predict(model, frame.loc[other, list(baseline.features)])
    frame = frame.copy()
    frame.loc[other, PREDICTION] = preds.for_task(baseline.task)
    if preds.score is not None and SCORE in frame:
        frame.loc[other, SCORE] = preds.score
    return frame


def _log(report: Report, mv: ModelVersion, window_end_ms: int, baseline, frame, chart, claim):
    """Log the cycle's run and its history step; returns the run and the page's makings.
    ``chart`` is the primary metric over earlier cycles, (window end, value); ``claim``,
    given the history run and the window's key, claims the window (or raises ``Held``)."""
    ctx, name = report.context, mv.name
    experiment = tracking.experiment_id(name)
    history = tracking.singleton_run(experiment, name, "history", "drift history")
    tags = {
        tracking.KIND: "monitor",
        tracking.MODEL: name,
        tracking.VERSION: ctx["version"],
        tracking.TAG + "verdict": report.verdict,
        tracking.TAG + "window_start": ctx["window_start"],
        tracking.TAG + "window_end": ctx["window_end"],
        tracking.TAG + "drifted_features": ",".join(report.drifted)[:4000],
        tracking.TAG + "attribution_alert": str(
            bool(report.attribution and report.attribution.alert)
        ).lower(),
        # Monitor runs stand at the top of the runs list; the tag finds their history run.
        tracking.HISTORY_RUN: history,
        RETRAIN: str(report.retrain.triggered).lower(),
        RETRAIN_CALLED: str(report.retrain.called).lower(),
        tracking.TAG + "retrain_reasons": "; ".join(report.retrain.reasons)[:4000],
        tracking.TAG + "retrain_held_back": report.retrain.held_back,
        WINDOW_KEY: ctx["window_key"],
        EVENT_TIME: ctx["event_time"],
        LABELLED_ROWS: ctx["labelled_rows"],
        TRIAGE: report.triage.kind,
        INPUT_ALARM: str(bool(input_alarms(report))).lower(),
    }
    metrics = report.metrics()
    page = (report, baseline, frame, chart)
    with phase("report"):
        figure = attribution_chart(report) if report.attribution else None
        html = render_html(*page)
    held = claim(history, ctx["window_key"]) if claim else None
    name_run = f"monitor {ctx['window_end'][:16]}"
    with released_on_error(held), tracking.atomic_run(experiment, name_run, tags) as run:
        run_id = run.info.run_id
        tracking.log_metrics(run_id, metrics)
        tracking.log_dict(run_id, report.to_dict(), SUMMARY)
        # Every name a metric key was made from: judged features and quality-only columns.
        named = {f.feature for f in report.features} | {q.feature for q in report.quality}
        tracking.log_dict(run_id, name_map(sorted(named)), NAMES)
        batches = len(ctx["batches"].split(","))
        tracking.log_params(run_id, {"batches": batches, "rows": report.n_rows})
        if figure is not None:
            tracking.log_text(run_id, figure, CHART)
        tracking.log_text(run_id, html, REPORT)
    # The version page links to the run holding its baseline (a version registered after
    # its baseline was logged is not yet) and to the newest cycle and what it decided.
    tracking.link_baseline(mv, ctx["baseline_run_id"])
    decided = (
        "retrain triggered"
        if report.retrain.triggered
        else "retrain called for, held back"
        if report.retrain.called
        else "no retrain"
    )
    tracking.set_version_tag(
        name,
        ctx["version"],
        tracking.TAG + "last_monitor_run",
        f"{run_id}: {report.verdict}, {decided}",
    )
    # The history run turns successive cycles into one line per metric in the UI.
    step = len(tracking.metric_history(history, "drift.share_drifted"))
    tracking.log_metrics(
        history, {**metrics, **headline(report, metrics)}, step=step, timestamp=window_end_ms
    )
    return run_id, page


HEADLINE = "headline/"


def headline(report: Report, metrics: dict[str, float]) -> dict[str, float]:
    """Copies, in the history run, of the figures a person looks for first: the share of
    features drifted (plain and importance-weighted), the primary performance metric, its
    estimate, and the number of data-quality alerts.

    MLflow's run page groups charts into sections by the metric name before its last "/"
    and shows named sections before the rest, charts in name order: ``headline/...``
    opens the page, above the two hundred others. Copies, not renames: readers and stores
    already written keep the documented names. ``metrics``: the report's."""
    copies = {k: k for k in ("drift.share_drifted", "drift.weighted_share_drifted")}
    if measured := primary(report.performance):
        copies[f"performance.{measured}"] = f"performance.{measured}"
    if estimated := primary(report.estimated):
        # Named to sort right after the measured metric it estimates.
        copies[f"performance.{estimated}.estimated"] = f"performance.estimated.{estimated}"
    out = {HEADLINE + k: metrics[v] for k, v in copies.items() if v in metrics}
    out[HEADLINE + "quality.alerts"] = float(len(report.quality_alerts))
    return out


@dataclass(frozen=True)
class CycleResult:
    registry: tuple[str, ...]  # what reconciling the registry did, in words
    monitor_run: str  # "" when another cycle holds the window
    report: Report | None  # None when nothing was new since ``monitor_run``, or held
    retrain: RetrainResult | None
    verdict: str = ""  # of the window monitored: ok, drift or quality
    waiting: str = ""  # why the retrain the cycle triggered waits (too little data yet)
    held_until: str = ""  # when the claim of the cycle that holds the window lapses

    def render(self) -> str:
        lines = list(self.registry)
        if self.held_until:
            lines.append(
                "another cycle is monitoring this window (its claim holds until "
                f"{self.held_until}): it logs the monitor run and acts on it"
            )
        elif self.report is None:
            lines.append(f"no new batches or labels since monitor run {self.monitor_run}")
        else:
            lines.append(self.report.render())
        if self.retrain is not None:
            lines.append(self.retrain.render())
        if self.waiting:
            lines.append(
                f"retrain waiting: {self.waiting}; the next cycle with new batches or labels "
                "tries again"
            )
        return "\n".join(lines)


def promote(name: str, policy: Policy | None = None) -> list[str]:
    """Carry out what was decided in the registry (``driftctl promote``, an approval that
    reached ``driftctl serve``); returns what happened, in words."""
    policy = policy or Policy()
    alerts.begin(name, policy)  # a webhook without its secret fails here, before any write
    said = registry.reconcile(name, policy.retrain.promotion)
    return said + alerts.dispatch(name, policy)


def cycle(name: str, *, last: int | None = None, policy: Policy | None = None) -> CycleResult:
    """Reconcile, monitor, and retrain if triggered: one idempotent pass for a scheduler."""
    with tracking.listing_once():
        return _cycle(name, last, policy or Policy())


def _cycle(name: str, last: int | None, policy: Policy) -> CycleResult:
    from controller.loop.retrain import retrain

    # Runs an earlier command left RUNNING (killed, or cut off from the server) end failed.
    tracking.sweep(name, policy.tracking.deadline_seconds)
    alerts.begin(name, policy)  # a webhook without its secret fails here, before any write
    said = tuple(registry.reconcile(name, policy.retrain.promotion))
    champion = tracking.resolve_version(name)
    logged = Logged.find(name)
    batches = [r.info.run_id for r in select_runs(name, last=last, logged=logged)]
    key = window_key(name, champion.version, batches, policy, logged)
    earlier = tracking.latest_runs(name, "monitor", 1)
    report, page, waiting = None, None, ""
    if earlier and earlier[0].data.tags.get(WINDOW_KEY) == key:
        run = earlier[0]
        run_id, triggered = run.info.run_id, run.data.tags.get(RETRAIN) == "true"
        verdict = run.data.tags.get(tracking.TAG + "verdict", "")
        version = run.data.tags.get(tracking.VERSION, str(champion.version))
        if run.data.tags.get(RETRAIN) == "waiting":  # and nothing arrived that could help
            waiting = run.data.tags.get(WAITING, "")
    else:

        def claim_window(history: str, key: str) -> Claim:
            follows = earlier[0] if earlier else tracking.get_run(history)
            return claim(follows, key, policy.tracking.deadline_seconds)

        try:
            report, page = _monitor(
                name, last=last, policy=policy, logged=logged, claim=claim_window
            )
        except Held as held:
            return CycleResult(said, "", None, None, held_until=held.until)
        run_id, triggered = report.context["run_id"], report.retrain.triggered
        verdict, version = report.verdict, report.context["version"]
    result = None
    try:
        if triggered:  # a retrain for this trigger that exists already is found, not repeated
            try:
                result = retrain(name, policy=policy, trigger_run=run_id)
            except NotEnoughDataError as exc:
                # Not a failure, and not a trigger for the cooldown: the next cycle with new
                # batches or labels calls for it again (``_still_waiting``).
                waiting = exc.problem
                _record_waiting(name, version, run_id, verdict, waiting, page)
            except DriftctlError as exc:
                # Not a trigger for the cooldown: the next cycle with new batches or labels
                # tries again.
                tracking.set_run_tag(run_id, RETRAIN, "failed")
                tracking.set_run_tag(run_id, tracking.TAG + "retrain_error", exc.problem[:4000])
                raise
            else:
                tracking.set_run_tag(run_id, tracking.TAG + "retrain_run", result.run_id)
                if report is not None:  # the cycle's page shows the challenger it built
                    tracking.log_text(run_id, render_html(*page, challenger=result), REPORT)
    except Exception:
        # The cycle's notice and the retries still go out; the retrain's error is the one
        # reported, whatever the alerts ran into.
        with contextlib.suppress(Exception):
            alerts.dispatch(name, policy, monitor_run=run_id, report=report)
        raise
    # After the retrain: a challenger it registered, or a champion it promoted, is news too.
    said += tuple(alerts.dispatch(name, policy, monitor_run=run_id, report=report))
    return CycleResult(said, run_id, report, result, verdict, waiting)


def _record_waiting(name, version, run_id, verdict, why, page) -> None:
    """Record on the monitor run, its page (when this cycle made it) and the version page
    why its retrain waits."""
    tracking.set_run_tag(run_id, WAITING, why[:4000])
    if page is not None:
        tracking.log_text(run_id, render_html(*page, retrain_waiting=why), REPORT)
    tracking.set_version_tag(
        name,
        version,
        tracking.TAG + "last_monitor_run",
        f"{run_id}: {verdict}, retrain triggered, waiting for data",
    )
    tracking.set_run_tag(run_id, RETRAIN, "waiting")  # last: the reason is there when this is


def summary_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=1, default=str)
