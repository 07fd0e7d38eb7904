"""Every entry point of the MLflow project, run with ``mlflow run`` against a sqlite store.

Each entry point's run is the run driftctl logs into: no empty wrapper runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import aliases, changed_concept, make_frame
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.inputs.batches import log_batch

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parent.parent / "mlproject"


def mlflow_run(entry: str, **params: str):
    """``mlflow run mlproject -e ENTRY -P k=v ... --env-manager local``: the project run."""
    args = [sys.executable, "-m", "mlflow", "run", str(PROJECT), "-e", entry,
            "--env-manager", "local"]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=600,
        # As in an activated virtual environment: the project's command is on PATH.
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = re.search(r"Run \(ID '(\w+)'\) succeeded", proc.stderr)[1]
    return MlflowClient().get_run(run_id), proc.stdout


def test_each_entry_point_logs_into_its_own_run(champion, tmp_path):
    data = tmp_path / "week.parquet"
    make_frame(600, 31).to_parquet(data)
    run, _ = mlflow_run("log_batch", model="credit", data=str(data), target="y")
    assert run.data.tags[tracking.KIND] == "batch" and run.info.status == "FINISHED"
    logged = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "driftctl")}
    assert {"driftctl/batch.parquet", "driftctl/profile.json", "driftctl/sample.parquet"} <= logged

    run, out = mlflow_run("monitor", model="credit")
    assert run.data.tags[tracking.KIND] == "monitor" and "verdict:" in out
    assert "drift.share_drifted" in run.data.metrics

    # Nothing new since that cycle: the project's run records that it found nothing.
    run, out = mlflow_run("cycle", model="credit")
    assert run.data.tags[tracking.KIND] == "cycle"
    assert "no new batches or labels" in run.data.tags["driftctl.outcome"]

    for week in range(2):
        log_batch("credit", changed_concept(600, 32 + week), target="y")
    run, out = mlflow_run("retrain", model="credit")
    assert run.data.tags[tracking.KIND] == "retrain" and run.data.tags["driftctl.gate"] == "passed"
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    assert MlflowClient().get_model_version("credit", "2").run_id == run.info.run_id

    MlflowClient().set_model_version_tag("credit", "2", "approval", "approved")
    run, _ = mlflow_run("promote", model="credit")
    assert run.data.tags[tracking.KIND] == "promote"
    assert "promoted champion from version 1 to 2" in run.data.tags["driftctl.outcome"]
    assert aliases("credit")["champion"] == "2"

    train = tmp_path / "train.parquet"
    make_frame(1000, 5).to_parquet(train)
    run, _ = mlflow_run("baseline", model="credit", data=str(train), version="1", target="y")
    assert run.data.tags[tracking.KIND] == "baseline"
    assert MlflowClient().get_model_version("credit", "1").tags[tracking.BASELINE_RUN] == (
        run.info.run_id)


def test_the_default_entry_point_is_the_cycle_and_simulate_plays_the_demo(sqlite_uri):
    run, out = mlflow_run("simulate", weeks="1", rows="300")
    assert "week  1" in out and "trained and registered credit-demo version 1" in out
    # The project's run is the champion's training run.
    assert MlflowClient().get_model_version("credit-demo", "1").run_id == run.info.run_id
    # Under the default policy (the demo has its own), the cycle monitors the week again.
    run, out = mlflow_run("main", model="credit-demo")
    assert run.data.tags[tracking.KIND] == "monitor" and "verdict:" in out


def test_a_run_that_finds_drift_succeeds(champion):
    """Drift is a finding, not a failure: `mlflow run` reports the run as succeeded and
    the UI shows it FINISHED, with the verdict in its tags."""
    batch = make_frame(600, 33, shift=1.5, flip_segment=True).drop(columns="y")
    log_batch("credit", batch.assign(id=[f"w-{i}" for i in range(600)]), id_col="id")
    monitor, out = mlflow_run("monitor", model="credit")
    assert monitor.info.status == "FINISHED" and "verdict: DRIFT" in out
    assert monitor.data.tags["driftctl.verdict"] == "drift"
    assert monitor.data.tags["driftctl.retrain"] == "true"
    # The cycle takes up the retrain that monitor run triggered; with no labels yet it
    # waits, and the cycle's run succeeds too, saying so.
    run, out = mlflow_run("cycle", model="credit")
    assert run.info.status == "FINISHED" and "retrain waiting: only 0 labelled" in out
    assert "retrain waiting" in run.data.tags["driftctl.outcome"]
    monitor = MlflowClient().get_run(monitor.info.run_id)
    assert monitor.data.tags["driftctl.retrain"] == "waiting"
    assert "labelled production rows" in monitor.data.tags["driftctl.retrain_waiting"]
