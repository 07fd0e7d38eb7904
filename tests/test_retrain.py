"""A challenger refitted on recent labelled rows, compared on held-out rows, and logged."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import changed_concept, make_frame, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.cli import main
from controller.inputs.batches import log_batch


def test_a_better_challenger_passes_and_is_logged_with_its_lineage(champion, capsys,
                                                                   tmp_path):
    for week in range(3):
        log_batch("credit", changed_concept(600, 30 + week), target="y")
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
        log_batch("credit", changed_concept(600, 40 + week, shuffle=True), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--exit-code"]) == 1
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


def test_a_users_training_entry_point_builds_the_challenger(champion, tmp_path, monkeypatch):
    """[retrain] entry_point names a step of the user's own MLflow project; driftctl runs it
    on the training rows and compares, logs and registers what it logged."""
    import os
    import sys

    from conftest import aliases

    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: credit-training\n"
        "entry_points:\n"
        "  train:\n"
        "    parameters:\n"
        "      training_data: path\n"
        "      target: {type: string, default: y}\n"
        "    command: python train.py {training_data} {target}\n"
    )
    (project / "train.py").write_text(
        "import sys\n"
        "import mlflow\n"
        "import pandas as pd\n"
        "from sklearn.compose import make_column_transformer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import OneHotEncoder\n"
        "data = pd.read_parquet(sys.argv[1])\n"
        "y = data.pop(sys.argv[2])\n"
        "encode = make_column_transformer((OneHotEncoder(), ['segment']),\n"
        "                                 remainder='passthrough')\n"
        "model = make_pipeline(encode, LogisticRegression(C=0.5, max_iter=1000))\n"
        "with mlflow.start_run():\n"
        "    mlflow.sklearn.log_model(model.fit(data, y), name='model',\n"
        "                             pip_requirements=['scikit-learn'])\n"
        "    mlflow.set_tag('trained_by', 'our own code')\n"
    )
    # The entry point's `python` is the one of this environment.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for week in range(3):
        log_batch("credit", changed_concept(600, 90 + week), target="y")
    assert main(["retrain", "--model", "credit", "--entry-point", "train",
                 "--project", str(project)]) == 0
    (run,) = runs_of("credit", "retrain")
    tags = run.data.tags
    assert tags["trained_by"] == "our own code" and tags["mlflow.project.entryPoint"] == "train"
    assert tags["driftctl.training"] == "train" and tags["driftctl.gate"] == "passed"
    assert tags[tracking.BASELINE] == tracking.BASELINE_PATH
    assert aliases("credit") == {"champion": "1", "challenger": "2"}


def test_a_failing_entry_point_is_a_clear_error(champion, tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: broken\nentry_points:\n  train:\n    command: python -c 'raise SystemExit(3)'\n")
    for week in range(3):
        log_batch("credit", changed_concept(600, 95 + week), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--entry-point", "train",
                 "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "the training entry point 'train'" in err and "mlflow run" in err
    assert [r for r in runs_of("credit", "retrain")] == []


def test_the_window_starts_at_a_change_in_the_champions_loss(champion, capsys):
    """Two weeks as in training, then the concept changes: the challenger learns from the
    rows since the change only, and its run says which rows and why."""
    before = [log_batch("credit", make_frame(600, 110 + w), target="y") for w in range(2)]
    after = [log_batch("credit", changed_concept(600, 112 + w), target="y") for w in range(2)]
    capsys.readouterr()
    assert main(["retrain", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "training rows: the 1" in out and "labelled rows since a change" in out
    (run,) = runs_of("credit", "retrain")
    tags, params = run.data.tags, run.data.params
    assert tags["driftctl.training_cut"] == "change point"
    assert tags["driftctl.batches"] == ",".join(after) and before[1] not in tags["driftctl.batches"]
    assert tags["driftctl.training_start"].startswith(f"batch {after[0]}")
    assert abs(int(params["driftctl.change_row"]) - 1200) <= 30
    assert float(params["driftctl.change_p_value"]) <= 0.01
    assert int(params["driftctl.train_rows"]) + int(params["driftctl.holdout_rows"]) == 2400 - int(
        params["driftctl.change_row"])
    assert "Brier score went from" in tags["driftctl.training_rows"]
    assert tags["driftctl.gate"] == "passed"
    description = MlflowClient().get_model_version("credit", "2").description
    assert "Training rows: the " in description and "since a change" in description


def test_random_labels_after_a_change_still_never_pass(champion, capsys):
    """The control: a window cut at a change to labels that are noise trains a challenger
    on noise, which the gate turns down."""
    for week in range(2):
        log_batch("credit", make_frame(600, 120 + week), target="y")
    for week in range(2):
        log_batch("credit", changed_concept(600, 122 + week, shuffle=True), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--exit-code"]) == 1
    (run,) = runs_of("credit", "retrain")
    assert run.data.tags["driftctl.training_cut"] == "change point"
    assert run.data.tags["driftctl.gate"] == "failed"


def test_too_few_rows_after_a_change_keep_the_whole_window(champion, tmp_path, capsys):
    policy = tmp_path / "p.toml"
    policy.write_text("[retrain]\nmin_rows_after_change = 1000\n")
    for week in range(2):
        log_batch("credit", make_frame(600, 130 + week), target="y")
    log_batch("credit", changed_concept(600, 132), target="y")
    main(["retrain", "--model", "credit", "--policy", str(policy)])
    (run,) = runs_of("credit", "retrain")
    tags = run.data.tags
    assert tags["driftctl.training_cut"] == "policy window"
    assert "follow the change (min_rows_after_change = 1000)" in tags["driftctl.training_rows"]
    assert len(tags["driftctl.batches"].split(",")) == 3


def test_an_expanding_window_cut_at_a_change_leaves_the_reference_out(champion, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('[retrain]\nwindow = "expanding"\n')
    for week in range(2):
        log_batch("credit", make_frame(600, 160 + week), target="y")
    for week in range(2):
        log_batch("credit", changed_concept(600, 162 + week), target="y")
    assert main(["retrain", "--model", "credit", "--policy", str(policy)]) == 0
    (run,) = runs_of("credit", "retrain")
    params = run.data.params
    assert run.data.tags["driftctl.training_cut"] == "change point"
    used = int(params["driftctl.train_rows"]) + int(params["driftctl.holdout_rows"])
    assert used == 2400 - int(params["driftctl.change_row"])  # no reference rows


def test_training_rows_keep_their_batch_and_event_time_when_a_time_filter_trims_the_window(
        champion):
    """Each row of a --since/--until window keeps its batch and event time, so the training
    rows run batch by batch in event-time order, with the right batches and start."""
    import numpy as np
    import pandas as pd

    from controller.loop.retrain import training_rows
    from controller.loop.window import load_window
    from controller.policy import Retrain

    rng = np.random.default_rng(170)
    logged, ids = [], []
    for day in range(3):
        frame = make_frame(200, 170 + day)
        # Rows are not logged in time order: the event time alone says which comes first.
        minutes = rng.permutation(200) * 5
        frame["at"] = [(pd.Timestamp(f"2026-03-0{day + 1}T00:00Z")
                        + pd.Timedelta(minutes=int(m))).isoformat() for m in minutes]
        ids.append(log_batch("credit", frame, timestamp_col="at", target="y"))
        logged.append(frame.assign(batch=ids[-1], at=pd.to_datetime(frame["at"], utc=True)))
    since, until = "2026-03-01T12:00Z", "2026-03-03T06:00Z"
    mv = tracking.resolve_version("credit")
    baseline, _ = tracking.load_baseline(mv)
    window = load_window("credit", baseline, since=since, until=until)

    every = pd.concat(logged, ignore_index=True)
    kept = every[(every["at"] >= pd.Timestamp(since)) & (every["at"] < pd.Timestamp(until))]
    assert 0 < len(kept) < len(every) and len(window.frame) == len(kept)
    # Row by row, the window says which batch each row is from and when it happened.
    by_x1 = kept.set_index("x1")
    assert window.row_batch.tolist() == by_x1.loc[window.frame["x1"], "batch"].tolist()
    assert window.row_time.tolist() == by_x1.loc[window.frame["x1"], "at"].tolist()

    rows = training_rows(window, baseline, tracking.load_model(mv),
                         Retrain(start_at_change=False))
    expected = kept.sort_values("at")
    used = pd.concat([rows.train, rows.hold], ignore_index=True)
    assert used["x1"].tolist() == expected["x1"].tolist()
    assert rows.batches == tuple(ids)
    first = expected.iloc[0]
    assert rows.start == f"batch {ids[0]}, event time {first['at'].isoformat()}"
    assert first["at"] >= pd.Timestamp(since)


def test_a_waiting_challenger_whose_model_is_gone_is_replaced(champion):
    """The model of the version waiting for approval no longer loads: the next challenger
    that passes replaces it, and says why."""
    import shutil
    from urllib.parse import urlparse

    from controller.loop.retrain import retrain

    for week in range(3):
        log_batch("credit", changed_concept(600, 180 + week), target="y")
    assert retrain("credit").version == "2"
    uri = MlflowClient().get_model_version_download_uri("credit", "2")
    shutil.rmtree(urlparse(uri).path)  # the artifacts are gone, the registry entry is not
    log_batch("credit", changed_concept(600, 183), target="y")
    result = retrain("credit")
    assert result.rival == "2" and result.rival_decision.passed
    assert result.rival_decision.reasons[0].startswith("the model of version 2 no longer loads")
    assert result.version == "3"
