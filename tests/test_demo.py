"""The demo tells the scenario's story: drift after the shift and not before, a retrain,
a better challenger, and its promotion once approved."""

from __future__ import annotations

import pytest
from conftest import aliases, ledger_of
from mlflow.tracking import MlflowClient

from controller.demo.run import MODEL, run_demo

pytestmark = pytest.mark.slow


def test_the_demo_story(sqlite_uri, capsys):
    # The scenario compressed: the shift in week 2, the new rule in week 4.
    story = run_demo(weeks=5, rows=600, train_rows=2000, shift_week=2, concept_week=4)
    out = capsys.readouterr().out
    before = [w for w in story if w.number < 2]
    assert all(w.verdict == "ok" and not w.triggered for w in before)
    first = next(w for w in story if w.verdict == "drift")
    assert first.number >= 2 and "salary" in first.drifted
    assert any(w.triggered for w in story)
    # Each week says what kind of problem it found; retraining answers only a confirmed one.
    assert all(w.triage == "ok" for w in before)
    assert all(w.triage in ("covariate_shift", "concept_drift") for w in story if w.triggered)
    assert f"triaged {first.triage}" in out or first.triage == "ok"
    promoted = [w for w in story if w.promoted]
    assert promoted and all(w.gate == "passed" and w.improvement > 0 for w in promoted)
    # The concept change shows in the outcomes a week later, and a challenger follows it.
    assert story[-1].new_rule and story[-1].triggered and story[-1].promoted
    assert "the demo approves it on your behalf" in out and "mlflow ui" in out
    last = promoted[-1].promoted
    assert aliases(MODEL)["champion"] == last
    assert MlflowClient().get_model_version(MODEL, last).tags["approval"] == "approved"
    assert sum(v.startswith("promote") for v in ledger_of(MODEL).values()) == len(promoted)
