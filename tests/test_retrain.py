"""A challenger refitted on recent labelled rows, compared on held-out rows, and logged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import make_frame, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.batches import log_batch
from controller.cli import main


def _changed_concept(n, seed, *, shuffle=False):
    """Same inputs as in training, but the label now follows x2 instead of x1."""
    frame = make_frame(n, seed)
    rng = np.random.default_rng(seed)
    y = (frame.x2 - frame.x2.median() + rng.normal(0, 0.2, n) > 0).astype(int)
    frame["y"] = rng.permutation(y.to_numpy()) if shuffle else y
    return frame


def test_a_better_challenger_passes_and_is_logged_with_its_lineage(champion, capsys,
                                                                   tmp_path):
    for week in range(3):
        log_batch("credit", _changed_concept(600, 30 + week), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--trigger-run", "r-1"]) == 0
    out = capsys.readouterr().out
    assert "gate on roc_auc: PASSED" in out and "roc_auc" in out and "delong" in out
    (run,) = runs_of("credit", "retrain")
    tags = run.data.tags
    assert tags["driftctl.gate"] == "passed" and tags["driftctl.champion_version"] == "1"
    assert tags["driftctl.trigger_run"] == "r-1" and len(tags["driftctl.holdout_digest"]) == 64
    assert len(tags["driftctl.batches"].split(",")) == 3
    m = run.data.metrics
    assert m["compare.roc_auc.challenger"] > m["compare.roc_auc.champion"] + 0.2
    assert m["compare.roc_auc.ci_low"] > 0
    # The challenger is a model with its own baseline: the loop can watch it in turn.
    assert tags[tracking.BASELINE] == tracking.BASELINE_PATH
    files = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "driftctl")}
    assert "driftctl/comparison.json" in files
    comparison = json.loads(Path(MlflowClient().download_artifacts(
        run.info.run_id, "driftctl/comparison.json", str(tmp_path))).read_text())
    assert comparison["passed"] and comparison["metric"] == "roc_auc"


def test_a_challenger_trained_on_shuffled_labels_fails(champion, capsys):
    for week in range(3):
        log_batch("credit", _changed_concept(600, 40 + week, shuffle=True), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit"]) == 1
    out = capsys.readouterr().out
    assert "gate on roc_auc: FAILED" in out and "does not clear" in out
    (run,) = runs_of("credit", "retrain")
    assert run.data.tags["driftctl.gate"] == "failed"


def test_too_few_labels_is_a_clear_error(champion, capsys):
    log_batch("credit", make_frame(300, 50).drop(columns="y"))
    assert main(["retrain", "--model", "credit"]) == 2
    err = capsys.readouterr().err
    assert "only 0 labelled production rows" in err and "log-labels" in err
    assert runs_of("credit", "retrain") == []
