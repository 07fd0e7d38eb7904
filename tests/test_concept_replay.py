"""An abrupt change of concept, replayed week by week through the controller's cycle.

The credit scenario's approval rule changes from Agrawal's function 1 to function 2 in week
3; each week's labels are logged before its cycle. The week that shows the drop must also
bring a challenger that passes (trained on the rows since the change), with and without
event times, and the challenger waiting for approval must not change under the reviewer
every week after.
"""

from __future__ import annotations

import pytest
from conftest import aliases, changed_concept, ledger_of, make_frame, register_model, runs_of
from mlflow.tracking import MlflowClient

from controller.demo.scenario import (
    DECIDED,
    FEATURES,
    ID,
    TARGET,
    credit_data,
    credit_pipeline,
    timeline,
)
from controller.inputs.batches import log_batch, log_labels
from controller.loop.cycle import cycle
from controller.policy import Attribution, Policy

pytestmark = pytest.mark.slow

MODEL = "loans"
ROWS = 1000
# Explaining fewer rows keeps each cycle short; the retraining rules are the defaults.
POLICY = Policy(attribution=Attribution(sample_size=100, loss_sample_size=30))


def _champion() -> None:
    """A forest that learned the old rule (Agrawal's function 1) perfectly."""
    train = credit_data(3000, seed=0, rule="age", noise=0.0)
    model = credit_pipeline(30, max_depth=8).fit(train[FEATURES], train[TARGET])
    register_model(MODEL, model, credit_data(1000, seed=1, rule="age", noise=0.0),
                   trusted=("sklearn.tree._tree.Tree",), target=TARGET,
                   attribution=POLICY.attribution)


@pytest.mark.parametrize("event_times", [True, False], ids=["event-times", "log-times"])
def test_the_cycle_that_first_sees_the_drop_registers_a_passing_challenger(sqlite_uri,
                                                                           event_times):
    _champion()
    story = []
    for week in timeline(5, ROWS, shift_week=99, concept_week=3, rules=("age", "bands"),
                         noise=0.0):
        if event_times:
            log_batch(MODEL, week.batch, id_col=ID, timestamp_col=DECIDED)
        else:  # stamped when logged: minutes apart in a replay
            log_batch(MODEL, week.batch.drop(columns=DECIDED), id_col=ID)
        log_labels(MODEL, week.labels, id_col=ID, target=TARGET)
        story.append(cycle(MODEL, policy=POLICY))

    assert not any(week.report.retrain.triggered for week in story[:2])
    third = story[2]
    assert third.report.performance["roc_auc"] < 0.6  # the drop, seen at once
    assert third.report.retrain.triggered
    assert third.retrain.decision.passed and third.retrain.version == "2"
    run = MlflowClient().get_run(third.retrain.run_id)
    assert run.data.tags["driftctl.training_cut"] == "change point"
    assert abs(int(run.data.params["driftctl.change_row"]) - 2 * ROWS) <= 30
    assert third.retrain.comparisons[0].challenger > 0.9

    # Later weeks: the champion is still wrong, so each cycle retrains (no cooldown holds it
    # back, event times or not), and each challenger passes against the champion; version 2
    # stays the challenger unless a newer one is significantly better than it.
    versions = ["2"]
    for week in story[3:]:
        assert week.report.retrain.triggered, week.report.retrain.held_back
        result = week.retrain
        assert result.decision.passed and result.rival == versions[-1]
        if result.rival_decision.passed:
            entry = ledger_of(MODEL)[f"superseded.{versions[-1]}"]
            assert entry.startswith(f"by version {result.version}: roc_auc better by")
            versions.append(result.version)
        else:
            assert result.version is None
    assert aliases(MODEL) == {"champion": "1", "challenger": versions[-1]}
    assert len(MlflowClient().search_model_versions(f"name = '{MODEL}'")) == len(versions) + 1
    monitors = runs_of(MODEL, "monitor")
    assert {r.data.tags["driftctl.event_time"] for r in monitors} == {str(event_times).lower()}


def test_failed_challengers_do_not_hold_back_the_next_attempt(champion):
    """Labels that are noise from week 2, batches stamped when logged: each week's
    challenger fails the gate, and the next week, with new labelled rows, tries again
    (24 hours of log time never pass in a replay)."""
    log_batch("credit", make_frame(600, 150), target="y")
    first = cycle("credit")
    assert not first.report.retrain.triggered
    results = []
    for week in range(3):
        log_batch("credit", changed_concept(600, 151 + week, shuffle=True), target="y")
        results.append(cycle("credit"))
    for week in results:
        assert week.report.retrain.triggered, week.report.retrain.held_back
        assert not week.retrain.decision.passed  # the random-label control never passes
    assert aliases("credit") == {"champion": "1"}
    assert [r.data.tags["driftctl.gate"] for r in runs_of("credit", "retrain")] == ["failed"] * 3
