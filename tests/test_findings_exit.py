"""Findings are not failures: drift, a failed gate and a retrain that waits for labels end
with exit status 0 and are recorded in MLflow; ``--exit-code`` puts the verdict in the exit
status for shell scripts; genuine bad input still fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import changed_concept, fit_model, make_frame, register_model, runs_of
from mlflow.tracking import MlflowClient

from controller.cli import main
from controller.inputs.batches import log_batch, log_labels
from controller.loop.cycle import RETRAIN, WAITING


def _drifted(n: int, seed: int):
    frame = make_frame(n, seed, shift=1.2, flip_segment=True)
    frame.insert(0, "id", [f"{seed}-{i}" for i in range(n)])
    return frame


def _page(run_id: str, tmp_path: Path) -> str:
    return Path(
        MlflowClient().download_artifacts(run_id, "driftctl/report.html", str(tmp_path))
    ).read_text()


@pytest.mark.slow
def test_monitor_exits_0_on_drift_and_1_with_exit_code(champion, capsys):
    log_batch("credit", _drifted(600, 3).drop(columns=["id", "y"]))
    assert main(["monitor", "--model", "credit"]) == 0
    assert "verdict: DRIFT" in capsys.readouterr().out
    assert main(["monitor", "--model", "credit", "--exit-code"]) == 1
    assert main(["cycle", "--model", "credit", "--exit-code", "--policy", _no_retrain()]) == 1
    monitors = runs_of("credit", "monitor")
    assert {r.data.tags["driftctl.verdict"] for r in monitors} == {"drift"}
    assert all(r.info.status == "FINISHED" for r in monitors)


def _no_retrain() -> str:
    path = Path("no-retrain.toml")
    path.write_text("[retrain]\nmax_performance_drop = 1.0\nmin_importance = 1.0\n")
    return str(path)


@pytest.mark.slow
def test_a_failed_gate_exits_0_and_1_with_exit_code(champion, capsys):
    for week in range(3):
        log_batch("credit", changed_concept(600, 40 + week, shuffle=True), target="y")
    assert main(["retrain", "--model", "credit"]) == 0
    assert "gate on roc_auc: FAILED" in capsys.readouterr().out
    # Asked again for the same data, it finds that challenger and says the same.
    assert main(["retrain", "--model", "credit", "--exit-code"]) == 1
    assert "found from an earlier run" in capsys.readouterr().out
    (run,) = runs_of("credit", "retrain")
    assert run.data.tags["driftctl.gate"] == "failed"


@pytest.mark.slow
def test_a_retrain_without_labels_waits_and_runs_once_they_arrive(champion, capsys,
                                                                    tmp_path):
    week = _drifted(600, 7)
    log_batch("credit", week.drop(columns="y"), id_col="id")
    capsys.readouterr()
    assert main(["cycle", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "verdict: DRIFT" in out and "retrain waiting: only 0 labelled" in out
    (monitor,) = runs_of("credit", "monitor")
    tags = monitor.data.tags
    assert tags[RETRAIN] == "waiting" and "only 0 labelled production rows" in tags[WAITING]
    assert monitor.data.metrics["retrain.triggered"] == 1
    assert 'id=retrain-waiting' in _page(monitor.info.run_id, tmp_path)
    version_tag = MlflowClient().get_model_version("credit", "1").tags
    assert "waiting for data" in version_tag["driftctl.last_monitor_run"]
    assert runs_of("credit", "retrain") == []

    # Nothing new: nothing is monitored or retried, and the cycle still succeeds.
    assert main(["cycle", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "no new batches or labels" in out and "retrain waiting: only 0 labelled" in out
    assert len(runs_of("credit", "monitor")) == 1 and runs_of("credit", "retrain") == []

    # The labels arrive: the next cycle monitors again and builds the challenger.
    log_labels("credit", week[["id", "y"]], id_col="id", target="y")
    assert main(["cycle", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "gate on roc_auc:" in out and "retrain waiting" not in out
    (retrain,) = runs_of("credit", "retrain")
    latest = max(runs_of("credit", "monitor"), key=lambda r: r.info.start_time)
    assert latest.data.tags[RETRAIN] == "true" and WAITING not in latest.data.tags
    assert latest.data.tags["driftctl.retrain_run"] == retrain.info.run_id
    assert retrain.data.tags["driftctl.trigger_run"] == latest.info.run_id
    assert f"monitor run {monitor.info.run_id} waits" in latest.data.tags[
        "driftctl.retrain_reasons"]

    # And a rerun changes nothing.
    assert main(["cycle", "--model", "credit"]) == 0
    assert len(runs_of("credit", "monitor")) == 2 and len(runs_of("credit", "retrain")) == 1


def test_a_retrain_that_cannot_run_at_all_is_still_an_error(sqlite_uri, capsys):
    train = make_frame(2000, 0)
    register_model("credit", fit_model(train), train.drop(columns="y"))  # no target
    log_batch("credit", _drifted(600, 9).drop(columns=["id", "y"]))
    capsys.readouterr()
    assert main(["cycle", "--model", "credit"]) == 2
    assert "its baseline has no target" in capsys.readouterr().err
    (monitor,) = runs_of("credit", "monitor")
    assert monitor.data.tags[RETRAIN] == "failed" and WAITING not in monitor.data.tags
