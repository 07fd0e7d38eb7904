"""The demo: the credit scenario played week by week through the controller's cycle.

It trains and registers the first champion with its baseline, then for each week of
``controller.demo.scenario.timeline`` logs the batch and the labels that arrived, and runs
``cycle``: the printed story says where drift was seen, when retraining triggered, how each
challenger compared, and what was promoted. A challenger that waits for approval is
approved on the user's behalf (the demo says so), as a person would in the MLflow UI.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from controller import tracking
from controller.demo.scenario import (
    CONCEPT_WEEK,
    DECIDED,
    FEATURES,
    ID,
    SHIFT_WEEK,
    TARGET,
    credit_data,
    credit_pipeline,
    timeline,
)
from controller.inputs.batches import log_batch, log_labels
from controller.loop import registry
from controller.loop.cycle import cycle
from controller.policy import Policy, Retrain

MODEL = "credit-demo"
# Labels arrive a week late, so a cycle looks at two weeks: the newest (inputs only) and
# the one before (with outcomes); a challenger trains on the newest labelled week.
LAST = 2
POLICY = Policy(retrain=Retrain(window_batches=2))


@dataclass(frozen=True)
class WeekResult:
    number: int
    shifted: bool
    new_rule: bool
    verdict: str
    triage: str  # what kind of problem the cycle found (ok when none)
    drifted: tuple[str, ...]
    accuracy: float | None
    triggered: bool
    gate: str | None  # passed | failed, when a challenger was built
    improvement: float | None  # of the gate's metric
    promoted: str | None  # the version promoted this week


def _say(text: str) -> None:
    print(text, flush=True)


def _clear_previous() -> None:
    """Start over: drop the model and the runs a previous demo left."""
    tracking.delete_registered_model(MODEL)
    ours = {r.info.run_id for r in tracking.model_runs(MODEL)}
    ours |= tracking.experiment_run_ids(tracking.EXPERIMENT.format(model=MODEL))
    for run_id in ours - {os.environ.get("MLFLOW_RUN_ID")}:  # not the project's own run
        tracking.delete_run(run_id)


def train_champion(rows: int = 5000, seed: int = 0) -> str:
    """Train, log and register the first champion with its baseline; returns its version."""
    import sklearn

    train = credit_data(rows, seed=seed)
    valid = credit_data(max(rows // 2, 500), seed=seed + 1)
    model = credit_pipeline(seed=seed).fit(train[FEATURES], train[TARGET])
    if "MLFLOW_RUN_ID" not in os.environ:  # under `mlflow run`, the project's run is this one
        tracking.set_experiment(f"{MODEL}-training")
    with warnings.catch_warnings():
        # The applicants' ages and counts are integers and never missing: MLflow's hint
        # about integer columns does not apply.
        warnings.simplefilter("ignore", UserWarning)
        signature = tracking.model_signature(train[FEATURES], model.predict(train[FEATURES]))
    with tracking.start_run("train champion"):
        version = tracking.log_sklearn_model(
            model,
            name="model",
            registered_model_name=MODEL,
            signature=signature,
            # MLflow's skops format trusts only the types named here; these trees are ours.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # skips a slow inference
        )
        tracking.log_baseline(valid, model=model, target=TARGET, attribution=POLICY.attribution)
    tracking.set_alias(MODEL, "champion", version)
    return version


def run_demo(
    weeks: int = 10,
    rows: int = 2000,
    train_rows: int = 5000,
    *,
    shift_week: int = SHIFT_WEEK,
    concept_week: int = CONCEPT_WEEK,
) -> list[WeekResult]:
    """Play the scenario; prints the story and returns it week by week."""
    _say(f"driftctl demo on {tracking.shown_uri()}")
    _clear_previous()
    version = train_champion(rows=train_rows)
    _say(f"trained and registered {MODEL} version {version} (alias champion) with its baseline\n")
    story, previous = [], None
    for week in timeline(weeks, rows, shift_week=shift_week, concept_week=concept_week):
        log_batch(MODEL, week.batch, id_col=ID, timestamp_col=DECIDED)
        if previous is not None:  # last week's outcomes are known now
            log_labels(MODEL, previous.labels, id_col=ID, target=TARGET)
        result = cycle(MODEL, last=LAST, policy=POLICY)
        story.append(_tell(week, result))
        previous = week
    _summary(story)
    return story


def _tell(week, result) -> WeekResult:
    report, retrained = result.report, result.retrain
    accuracy = report.performance.get("accuracy") if report else None
    context = ("incomes down, loans up" if week.shifted else "as in training") + (
        "; new approval rule" if week.new_rule else ""
    )
    _say(
        f"week {week.number:>2} ({context}): {report.verdict.upper() if report else '-':<7}"
        f" drifted: {', '.join(report.drifted) or 'none' if report else '-'}"
        + (f"; accuracy {accuracy:.3f}" if accuracy is not None else "")
        + (f"; triaged {report.triage.kind}" if report and report.triage.kind != "ok" else "")
        + ("; retrain triggered" if report and report.retrain.triggered else "")
    )
    promoted = None
    for line in result.registry:
        _say(f"         {line}")
    gate = improvement = None
    if retrained is not None:
        c = next(c for c in retrained.comparisons if c.metric == retrained.metric)
        gate = "passed" if retrained.decision.passed else "failed"
        improvement = c.improvement
        _say(
            f"         challenger of version {retrained.champion_version}: {c.metric} "
            f"{c.champion:.3f} -> {c.challenger:.3f} ({c.improvement:+.3f}, interval "
            f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]): gate {gate}"
            + ("" if retrained.decision.passed else f" ({retrained.decision.reasons[0]})")
        )
        if retrained.version and registry.CHALLENGER in tracking.aliases(MODEL):
            _say(
                f"         version {retrained.version} awaits approval; the demo approves it on "
                "your behalf (in real use a person sets the tag approval=approved on the "
                "version page in the MLflow UI)"
            )
            tracking.set_version_tag(MODEL, retrained.version, registry.APPROVAL, "approved")
            for line in registry.reconcile(MODEL):
                _say(f"         {line}")
            promoted = retrained.version
    return WeekResult(
        week.number,
        week.shifted,
        week.new_rule,
        report.verdict if report else "-",
        report.triage.kind if report else "-",
        tuple(report.drifted) if report else (),
        accuracy,
        bool(report and report.retrain.triggered),
        gate,
        improvement,
        promoted,
    )


def _summary(story: list[WeekResult]) -> None:
    drift = [w for w in story if w.verdict == "drift"]
    shift = next((w.number for w in story if w.shifted), None)
    concept = next((w.number for w in story if w.new_rule), None)
    _say("\nThe story:")
    if shift:
        _say(
            f"- Incomes fell and loans grew from week {shift}. "
            + (
                f"driftctl first saw drift in week {drift[0].number} "
                f"({', '.join(drift[0].drifted)})."
                if drift
                else "driftctl saw no drift."
            )
        )
    for w in story:
        if w.gate:
            _say(
                f"- Week {w.number}: retraining triggered; the challenger "
                + (
                    f"passed the gate ({w.improvement:+.3f}) and was promoted after approval."
                    if w.promoted
                    else f"failed the gate ({w.improvement:+.3f}): no better on the newest "
                    "labelled rows, so the champion stays."
                )
            )
    if concept:
        _say(
            f"- The approval rule changed in week {concept}: inputs do not show it; the "
            "outcomes, a week late, do."
        )
    _say(
        f"\nSee it in the MLflow UI: mlflow ui --backend-store-uri {tracking.shown_uri()}"
        f"\nthen open the experiment {tracking.EXPERIMENT.format(model=MODEL)!r} (choose 'Model "
        "training' in the sidebar; each week is a monitor run, 'drift history' charts them "
        "all, the 'registry ledger' run lists every promotion, and 'production data' holds "
        f"the batches) and the model {MODEL!r} in Models (versions, aliases, the approval tag)."
    )
