"""Bad input: one clear message with a fix, exit status 2, and nothing left in MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register, runs_of
from mlflow.tracking import MlflowClient

from controller import InputError, tracking
from controller.cli import main
from controller.profiles.build import build_baseline


def _no_leftovers(model: str, before: int) -> None:
    runs = runs_of(model)
    assert len(runs) == before, [r.data.tags for r in runs]
    everywhere = MlflowClient().search_runs(
        [e.experiment_id for e in MlflowClient().search_experiments()],
        filter_string="attributes.status = 'RUNNING'",
    )
    assert everywhere == []


def _fails(capsys, args, *needles):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error:" in err and "fix:" in err
    assert err.count("error:") == 1
    for needle in needles:
        assert needle in err, err
    return err


def _write(tmp_path, frame, name="batch.parquet"):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return str(path)


@pytest.fixture
def batch():
    return make_frame(300, 9).drop(columns="y")


def test_unknown_model_alias_and_version(champion, capsys):
    _fails(capsys, ["monitor", "--model", "nope"], "no registered model named 'nope'", "credit")
    _fails(capsys, ["monitor", "--model", "credit", "--alias", "gold"],
           "has no alias 'gold'", "champion")
    _fails(capsys, ["monitor", "--model", "credit", "--version", "7"], "has no version '7'",
           "versions: 1")
    _no_leftovers("credit", 0)


def test_no_baseline(sqlite_uri, capsys):
    register("bare", baseline=False)
    _fails(capsys, ["monitor", "--model", "bare"], "has no driftctl baseline",
           "driftctl baseline --model bare --version 1")


def test_no_batches_in_window(champion, tmp_path, batch, capsys):
    _fails(capsys, ["monitor", "--model", "credit"], "no production batches")
    assert main(["log-batch", "--model", "credit", "--data", _write(tmp_path, batch)]) == 0
    _fails(capsys, ["monitor", "--model", "credit", "--since", "2031-01-01"],
           "no production batches for model 'credit' between 2031-01-01")
    _fails(capsys, ["monitor", "--model", "credit", "--since", "yesterday-ish"], "--since")
    _no_leftovers("credit", 2)  # the batch, and the production data run grouping it


@pytest.mark.parametrize(
    "mutate, needles",
    [
        (lambda f: f.iloc[:0], ["holds no rows"]),
        (lambda f: f.drop(columns="x2"), ["missing feature column(s) ['x2']"]),
        (lambda f: f.assign(extra=1), ["unexpected column(s) ['extra']", "--id-col"]),
        (lambda f: f.assign(x1="abc"), ["'x1' is numeric in the baseline but categorical",
                                        "cast the column"]),
        (lambda f: f.assign(ts=pd.Timestamp("2026-01-01")), ["unexpected column(s) ['ts']"]),
    ],
    ids=["empty", "missing-column", "extra-column", "wrong-dtype", "undeclared-timestamp"],
)
def test_bad_batches_are_refused_whole(champion, tmp_path, batch, capsys, mutate, needles):
    _fails(capsys, ["log-batch", "--model", "credit", "--data",
                    _write(tmp_path, mutate(batch))], *needles)
    _no_leftovers("credit", 0)


def test_unreadable_and_absent_files(champion, tmp_path, capsys):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really")
    _fails(capsys, ["log-batch", "--model", "credit", "--data", str(bad)], "cannot read")
    _fails(capsys, ["log-batch", "--model", "credit", "--data", str(tmp_path / "none.csv")],
           "does not exist")
    odd = tmp_path / "batch.xlsx"
    odd.write_text("x")
    _fails(capsys, ["log-batch", "--model", "credit", "--data", str(odd)], "*.parquet or *.csv")
    _no_leftovers("credit", 0)


def test_a_batch_the_model_cannot_score_is_logged_without_predictions(sqlite_uri, tmp_path, batch):
    from conftest import FEATURES, register_model
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = make_frame(1000, 1)
    strict = Pipeline([
        ("enc", ColumnTransformer([("s", OneHotEncoder(handle_unknown="error"), ["segment"])],
                                  remainder="passthrough")),
        ("clf", LogisticRegression()),
    ]).fit(train[FEATURES], train["y"])
    register_model("strict", strict, train, target="y")
    odd = batch.assign(segment=np.where(np.arange(len(batch)) < 5, "zz", batch.segment))
    # Logged all the same, without predictions: the cycle triages the unseen categories.
    assert main(["log-batch", "--model", "strict", "--data", _write(tmp_path, odd)]) == 0
    (run,) = runs_of("strict", "batch")
    assert "the model failed to predict" in run.data.tags["driftctl.unscored"]
    assert "zz" in run.data.tags["driftctl.unscored"]


def test_unseen_categories_are_a_quality_alert(champion, tmp_path, batch, capsys):
    odd = batch.assign(segment=np.where(np.arange(len(batch)) < 30, "zz", batch.segment))
    assert main(["log-batch", "--model", "credit", "--data", _write(tmp_path, odd)]) == 0
    capsys.readouterr()
    assert main(["monitor", "--model", "credit", "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "quality alert: unseen_share on 'segment' = 0.1" in out


def test_bad_policy(champion, tmp_path, batch, capsys):
    assert main(["log-batch", "--model", "credit", "--data", _write(tmp_path, batch)]) == 0
    policy = tmp_path / "policy.toml"
    policy.write_text("[drift]\nfdr = 2\n")
    _fails(capsys, ["monitor", "--model", "credit", "--policy", str(policy)],
           "'fdr' parameter of [drift] must be a number in the range (0, 1). Got 2 instead")
    policy.write_text("[drift.numeric]\nstatistc = 'psi'\n")
    _fails(capsys, ["monitor", "--model", "credit", "--policy", str(policy)],
           "unknown key(s) ['statistc']")
    policy.write_text("[features.age]\nmin_effect = 0.3\n")
    _fails(capsys, ["monitor", "--model", "credit", "--policy", str(policy)],
           "feature(s) ['age'] that the baseline does not have")
    policy.write_text("[drift\n")
    _fails(capsys, ["monitor", "--model", "credit", "--policy", str(policy)], "not valid TOML")
    _no_leftovers("credit", 2)  # the batch, and the production data run grouping it


@pytest.mark.parametrize(
    "frame, needle",
    [
        (pd.DataFrame({0: [1.0, 2.0], 1: [3.0, 4.0]}), "column names must be strings"),
        (pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [1.0, 2.0, 3.0]}), "'a' is constant"),
        (pd.DataFrame({"a": [np.nan] * 3, "b": [1.0, 2.0, 3.0]}), "'a' is entirely missing"),
        (pd.DataFrame({"a": [1.0, np.inf, 2.0], "b": [1.0, 2.0, 3.0]}), "infinite"),
        (pd.DataFrame({"a": [1, "x", 2.0], "b": [1.0, 2.0, 3.0]}), "holding mixed-integer values"),
        (pd.DataFrame({"a": pd.to_datetime(["2026-01-01"] * 2 + ["2026-01-02"]),
                       "b": [1.0, 2.0, 3.0]}), "cannot monitor"),
    ],
    ids=["non-string-names", "constant", "all-nan", "inf", "mixed", "datetime"],
)
def test_bad_baseline_data(frame, needle):
    with pytest.raises(InputError) as info:
        build_baseline(frame)
    assert needle in info.value.problem and info.value.fix


def test_bad_baseline_through_cli_leaves_no_run(sqlite_uri, tmp_path, capsys):
    register("bare", baseline=False)
    data = make_frame(200, 0).assign(const=5.0)
    _fails(capsys, ["baseline", "--model", "bare", "--version", "1", "--data",
                    _write(tmp_path, data, "train.csv"), "--target", "y"], "'const' is constant")
    _fails(capsys, ["baseline", "--model", "bare", "--version", "1", "--data",
                    _write(tmp_path, make_frame(200, 0), "t.csv"), "--target", "label"],
           "target column 'label' is not in the data")
    _no_leftovers("bare", 0)
    assert tracking.BASELINE_RUN not in MlflowClient().get_model_version("bare", "1").tags


def test_a_failure_while_logging_deletes_the_run(sqlite_uri):
    exp = tracking.experiment_id("m")
    with pytest.raises(RuntimeError), tracking.atomic_run(exp, "x", {tracking.KIND: "batch"}):
        raise RuntimeError("disk full")
    assert MlflowClient().search_runs([exp]) == []
    _no_leftovers("m", 0)


def test_an_unreachable_tracking_server_is_one_clear_error(tmp_path, monkeypatch):
    import socket

    from conftest import run_cli

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli("monitor", "--model", "credit", "--tracking-uri",
                           f"http://127.0.0.1:{port}")
    assert rc == 2 and out == ""
    assert "Connection refused" in err and "server is up" in err
    assert err.count("error:") == 1


def test_labels_without_the_named_columns_are_refused(champion, tmp_path, batch, capsys):
    labels = _write(tmp_path, pd.DataFrame({"id": [1, 2], "y": [0, 1]}), "labels.csv")
    _fails(capsys, ["log-labels", "--model", "credit", "--data", labels, "--id-col", "key",
                    "--target", "y"], "column 'key' (--id-col) is not in the labels file",
           "pass the name of the id column with --id-col")
    _fails(capsys, ["log-labels", "--model", "credit", "--data", labels, "--id-col", "id",
                    "--target", "outcome"], "column 'outcome' (--target) is not in the labels")
    _no_leftovers("credit", 0)
