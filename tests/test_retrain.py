"""A challenger refitted on recent labelled rows, compared on held-out rows, and logged."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import changed_concept, make_frame, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.batches import log_batch
from controller.cli import main


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
