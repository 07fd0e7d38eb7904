"""What the MLflow UI shows of driftctl's work: the experiment's kind, and a runs list whose
top level holds the cycles, with batches and labels grouped under one run per model."""

from __future__ import annotations

import mlflow
from conftest import make_frame, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.inputs.batches import batch_runs, log_batch, log_labels
from controller.loop.cycle import monitor

KIND = "mlflow.experimentKind"


def test_the_experiment_declares_its_kind_new_or_old(sqlite_uri):
    client = MlflowClient()
    new = tracking.experiment_id("fresh")
    assert client.get_experiment(new).tags[KIND] == "custom_model_development"

    # An experiment of an earlier release gets the kind on its next use ...
    old = client.create_experiment("driftctl-old", tags={tracking.MODEL: "old"})
    assert KIND not in client.get_experiment(old).tags
    assert tracking.experiment_id("old") == old
    assert client.get_experiment(old).tags[KIND] == "custom_model_development"

    # ... and a kind someone chose in the UI stays.
    chosen = client.create_experiment("driftctl-chosen", tags={KIND: "genai_development"})
    assert tracking.experiment_id("chosen") == chosen
    assert client.get_experiment(chosen).tags[KIND] == "genai_development"


def test_batches_and_labels_are_grouped_and_cycles_stand_at_the_top(champion):
    frame = make_frame(600, 31).assign(id=[f"r{i}" for i in range(600)])
    log_batch("credit", frame.drop(columns="y"), id_col="id")
    log_labels("credit", frame[["id", "y"]], id_col="id", target="y")
    log_batch("credit", make_frame(300, 32).drop(columns="y"))
    report = monitor("credit", last=2)

    runs = runs_of("credit")
    kind = {r.info.run_id: r.data.tags[tracking.KIND] for r in runs}
    (production,) = [r for r in runs if kind[r.info.run_id] == "production"]
    assert production.info.run_name == "production data"
    grouped = [r for r in runs if kind[r.info.run_id] in ("batch", "labels")]
    assert len(grouped) == 3
    assert {r.data.tags[tracking.PARENT_RUN] for r in grouped} == {production.info.run_id}
    top = {kind[r.info.run_id] for r in runs if tracking.PARENT_RUN not in r.data.tags}
    assert top == {"production", "history", "monitor"}

    # Readers find every batch and the labels matched to them, nested as they are.
    assert len(batch_runs("credit")) == 2
    assert report.n_rows == 900 and report.n_labelled == 600
    (history,) = [r for r in runs if kind[r.info.run_id] == "history"]
    (cycle,) = [r for r in runs if kind[r.info.run_id] == "monitor"]
    assert cycle.data.tags[tracking.HISTORY_RUN] == history.info.run_id


def test_a_project_run_stays_where_the_project_put_it(champion, monkeypatch):
    """Under ``mlflow run`` the batch is the project's own run: not moved under ours."""
    client = MlflowClient()
    project = client.create_run(mlflow.get_experiment_by_name("training").experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", project.info.run_id)
    run_id = log_batch("credit", make_frame(200, 33).drop(columns="y"))
    assert run_id == project.info.run_id
    tags = client.get_run(run_id).data.tags
    assert tags[tracking.KIND] == "batch" and tracking.PARENT_RUN not in tags
    assert [r.info.run_id for r in batch_runs("credit")] == [run_id]
