"""End to end through the CLI on a sqlite store: baseline, batches, labels, monitor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register, register_model, run_cli, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.cli import main
from controller.profiles import storage


def _batch(tmp_path, name, n, seed, *, fmt="parquet", start="2026-03-02", **shift):
    frame = make_frame(n, seed, **shift)
    frame.insert(0, "id", [f"{name}-{i}" for i in range(n)])
    frame["ts"] = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    path = tmp_path / f"{name}.{fmt}"
    inputs = frame.drop(columns="y")
    if fmt == "csv":
        inputs.to_csv(path, index=False)
    else:
        inputs.to_parquet(path)
    labels = tmp_path / f"{name}-labels.csv"
    frame[["id", "y"]].to_csv(labels, index=False)
    return path, labels


def _monitor_json(capsys, *args):
    rc = main(["monitor", "--model", "credit", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_baseline_is_linked_to_the_version_and_documented_format(champion):
    client = MlflowClient()
    mv = client.get_model_version("credit", "1")
    run_id = mv.tags[tracking.BASELINE_RUN]
    assert run_id == mv.run_id  # logged in the training run
    files = {f.path for f in client.list_artifacts(run_id, tracking.BASELINE_PATH)}
    assert files == {f"{tracking.BASELINE_PATH}/baseline.json",
                     f"{tracking.BASELINE_PATH}/reference.parquet",
                     f"{tracking.BASELINE_PATH}/attribution.parquet"}
    baseline, _ = tracking.load_baseline(mv)
    assert list(baseline.features) == ["x1", "x2", "segment", "flag"]
    x1 = baseline.features["x1"]
    assert x1.kind == "numeric" and sum(x1.counts) == 2000 and x1.missing == 0
    assert len(x1.counts) == len(x1.edges) + 1
    assert baseline.features["segment"].categories == ("a", "b", "c", "d")
    assert baseline.features["flag"].kind == "boolean"
    assert baseline.features["flag"].categories == ("False", "True")
    assert baseline.task == "classification" and baseline.positive_class == "1"
    assert 0.6 < baseline.performance["roc_auc"] <= 1
    assert baseline.prediction is not None and baseline.prediction.kind == "categorical"
    assert len(baseline.reference) == 2000
    assert baseline.attribution["explainer"] == "linear"
    assert baseline.attribution["rank"][0] == "x1"  # the strongest coefficient
    assert sum(baseline.attribution["share"].values()) == pytest.approx(1.0)
    assert set(baseline.attribution["loss"]) == set(baseline.features)
    assert list(baseline.attribution_values.columns) == list(baseline.features)


def test_cycle_ok_then_drift_with_late_labels(champion, tmp_path, capsys):
    calm, calm_labels = _batch(tmp_path, "calm", 1500, 11)
    assert main(["log-batch", "--model", "credit", "--data", str(calm), "--id-col", "id",
                 "--timestamp-col", "ts"]) == 0
    assert main(["log-labels", "--model", "credit", "--data", str(calm_labels),
                 "--id-col", "id", "--target", "y"]) == 0
    capsys.readouterr()
    rc, calm_summary = _monitor_json(capsys)
    assert rc == 0, calm_summary
    assert calm_summary["verdict"] == "ok" and calm_summary["drifted_features"] == []
    assert calm_summary["n_labelled"] == 1500
    assert 0.6 < calm_summary["performance"]["roc_auc"] <= 1

    shifted, _ = _batch(tmp_path, "shifted", 1500, 12, fmt="csv", start="2026-03-09",
                        shift=1.0, flip_segment=True)
    assert main(["log-batch", "--model", "credit", "--data", str(shifted), "--id-col", "id",
                 "--timestamp-col", "ts"]) == 0
    capsys.readouterr()
    rc, summary = _monitor_json(capsys, "--last", "1", "--exit-code")
    assert rc == 1
    assert summary["verdict"] == "drift"
    assert set(summary["drifted_features"]) == {"x1", "segment"}
    assert summary["prediction"]["drifted"]

    # Both cycles are top-level runs naming the history run, whose metric history is a line.
    monitors = runs_of("credit", "monitor")
    assert len(monitors) == 2
    latest = max(monitors, key=lambda r: r.info.start_time)
    assert latest.data.tags[tracking.TAG + "verdict"] == "drift"
    assert latest.data.tags[tracking.VERSION] == "1"
    assert latest.data.tags[tracking.TAG + "window_start"].startswith("2026-03-09")
    m = latest.data.metrics
    assert m["drift.verdict.x1"] == 1 and m["drift.verdict.x2"] == 0
    assert m["drift.share_drifted"] == 0.5
    for stat in ("ks", "psi", "jensen_shannon", "kl", "wasserstein", "hellinger"):
        assert f"drift.{stat}.x1" in m
    for stat in ("chi2", "psi", "jensen_shannon", "kl", "hellinger"):
        assert f"drift.{stat}.segment" in m
    assert "drift.ks.segment" not in m
    assert "quality.missing_rate_change.x1" in m and "quality.unseen_share.segment" in m
    history = runs_of("credit", "history")
    assert len(history) == 1
    assert {r.data.tags[tracking.HISTORY_RUN] for r in monitors} == {history[0].info.run_id}
    assert not any(tracking.PARENT_RUN in r.data.tags for r in monitors)
    points = MlflowClient().get_metric_history(history[0].info.run_id, "drift.psi.x1")
    assert [p.step for p in sorted(points, key=lambda p: p.step)] == [0, 1]
    assert points[-1].value > points[0].value
    # The headline copies open the history run's charts and follow their originals.
    kept = history[0].data.metrics
    assert kept["headline/drift.share_drifted"] == m["drift.share_drifted"] == 0.5
    assert kept["headline/quality.alerts"] == len(summary["quality_alerts"])
    summary_file = MlflowClient().download_artifacts(
        latest.info.run_id, "driftctl/summary.json", str(tmp_path))
    logged = json.loads(Path(summary_file).read_text())
    assert logged["drifted_features"] == summary["drifted_features"]
    assert logged["attribution"]["explainer"] == "linear"
    artifacts = {f.path for f in MlflowClient().list_artifacts(latest.info.run_id, "driftctl")}
    assert "driftctl/attribution_shift.svg" in artifacts
    assert "attribution.ndcg" in m and "attribution.share_change.x1" in m


def test_window_by_time_and_readable_table(champion, tmp_path, capsys):
    for i, start in enumerate(["2026-03-02", "2026-03-09", "2026-03-16"]):
        path, _ = _batch(tmp_path, f"b{i}", 400, 20 + i, start=start)
        assert main(["log-batch", "--model", "credit", "--data", str(path), "--id-col", "id",
                     "--timestamp-col", "ts"]) == 0
    capsys.readouterr()
    rc = main(["monitor", "--model", "credit", "--since", "2026-03-08", "--until", "2026-03-16"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "verdict: OK" in out and "over 400 rows" in out
    header = out.splitlines()[0].split()
    assert header[:4] == ["feature", "statistic", "value", "threshold"]
    assert any(line.startswith("x1 ") and line.rstrip().endswith("ok") for line in out.splitlines())
    rc = main(["monitor", "--model", "credit", "--last", "3", "--json"])
    assert json.loads(capsys.readouterr().out)["n_rows"] == 1200


def test_baseline_command_for_a_model_registered_without_one(sqlite_uri, tmp_path, capsys):
    register("plain", baseline=False)
    data = tmp_path / "train.csv"
    make_frame(1000, 3).to_csv(data, index=False)
    assert main(["baseline", "--model", "plain", "--alias", "champion", "--data", str(data),
                 "--target", "y"]) == 0
    mv = MlflowClient().get_model_version("plain", "1")
    run_id = mv.tags[tracking.BASELINE_RUN]
    assert run_id != mv.run_id
    baseline, found = tracking.load_baseline(mv)
    assert found == run_id and baseline.n_rows == 1000 and "accuracy" in baseline.performance


def test_console_script_exit_status_and_help(champion, tmp_path):
    rc, out, _ = run_cli("--help")
    assert rc == 0 and "monitor" in out and "log-batch" in out
    for command in ("baseline", "log-batch", "log-labels", "monitor", "retrain", "promote",
                    "rollback", "cycle", "demo"):
        rc, out, _ = run_cli(command, "--help")
        assert rc == 0 and "--tracking-uri" in out, command
    path, _ = _batch(tmp_path, "s", 1000, 5, shift=1.5)
    rc, _, err = run_cli("log-batch", "--model", "credit", "--data", str(path))
    assert rc == 2 and "unexpected column(s) ['id', 'ts']" in err and "--id-col" in err
    assert run_cli("log-batch", "--model", "credit", "--data", str(path), "--id-col", "id",
                   "--timestamp-col", "ts")[0] == 0
    # Drift is a finding, not a failure; --exit-code puts it in the exit status.
    rc, out, err = run_cli("monitor", "--model", "credit")
    assert rc == 0, err
    assert "DRIFT" in out
    assert main(["monitor", "--model", "credit", "--exit-code"]) == 1


def test_saved_baseline_round_trips(champion, tmp_path):
    baseline, _ = tracking.load_baseline(MlflowClient().get_model_version("credit", "1"))
    storage.save(baseline, tmp_path / "b")
    again = storage.load(tmp_path / "b")
    assert again.features == baseline.features
    assert again.performance == baseline.performance
    pd.testing.assert_frame_equal(again.reference, baseline.reference)


@pytest.mark.parametrize("weird", [["income ($)", "income (%)"], ["a/b", "a..b"]])
def test_feature_names_mlflow_rejects_are_mapped_without_collisions(sqlite_uri, tmp_path, weird):
    from sklearn.linear_model import LinearRegression

    from controller.inputs.batches import log_batch
    from controller.loop.cycle import monitor
    from controller.results.naming import metric_safe

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({weird[0]: rng.normal(size=800), weird[1]: rng.normal(size=800)})
    register_model("odd", LinearRegression().fit(frame, frame.sum(axis=1)), frame)
    log_batch("odd", frame.assign(**{weird[0]: frame[weird[0]] + 3}))
    report = monitor("odd")
    assert report.drifted == [weird[0]]
    keys = [metric_safe(w) for w in weird]
    assert len(set(keys)) == 2 and keys != weird
    (run,) = runs_of("odd", "monitor")
    assert run.data.metrics[f"drift.verdict.{keys[0]}"] == 1
    assert run.data.metrics[f"drift.verdict.{keys[1]}"] == 0
    names = json.loads(Path(MlflowClient().download_artifacts(
        run.info.run_id, "driftctl/metric_names.json", str(tmp_path))).read_text())
    assert names == {w: k for w, k in zip(weird, keys, strict=True) if w != k}


def test_served_predictions_are_taken_from_the_file(champion, tmp_path, capsys):
    frame = make_frame(600, 41).drop(columns="y").assign(prediction=1)
    path = tmp_path / "served.csv"
    frame.to_csv(path, index=False)
    assert main(["log-batch", "--model", "credit", "--data", str(path)]) == 0
    capsys.readouterr()
    rc, summary = _monitor_json(capsys, "--exit-code")
    # The champion would predict both classes; the served predictions are all 1.
    assert rc == 1 and summary["prediction"]["drifted"]
    assert summary["drifted_features"] == []


def test_regression_with_inline_labels(sqlite_uri, tmp_path):
    from sklearn.linear_model import Ridge

    from controller.inputs.batches import log_batch
    from controller.loop.cycle import monitor

    rng = np.random.default_rng(1)

    def frame(n, noise):
        x = rng.normal(size=(n, 3))
        return pd.DataFrame(x, columns=["a", "b", "c"]).assign(
            price=x @ [2.0, -1.0, 0.5] + rng.normal(0, noise, n))

    train = frame(2000, 0.1)
    model = Ridge().fit(train[["a", "b", "c"]], train["price"])
    _, baseline = register_model("price", model, train, target="price")
    assert baseline.task == "regression" and baseline.performance["rmse"] < 0.2
    log_batch("price", frame(500, 1.0), target="price")
    report = monitor("price")
    assert report.n_labelled == 500
    assert report.performance["rmse"] > 0.7  # the noise grew; the inputs did not change
    assert report.drifted == [] and report.prediction is not None
    assert report.prediction.kind == "numeric" and not report.prediction.drifted


def test_the_window_key_follows_the_monitoring_policy_not_the_logging_one(sqlite_uri):
    """A cycle reruns a window when its findings could differ: a changed drift rule, not
    a changed [batches] section, which shapes only batches logged later."""
    from controller.loop.window import window_key
    from controller.policy import Batches, Policy, Rule

    runs = ["run-a", "run-b"]
    policy = Policy()
    key = window_key("m", "1", runs, policy)
    assert window_key("m", "1", runs, Policy(batches=Batches(sample_size=500))) == key
    assert window_key("m", "1", runs, Policy(numeric=Rule("wasserstein", "ks", 0.3))) != key
    assert window_key("m", "2", runs, policy) != key
    assert window_key("m", "1", runs[:1], policy) != key


def test_a_cycle_reads_its_latest_predecessors_not_the_whole_history(champion, tmp_path):
    """The newest runs of a kind come newest first, however many there are, so a cycle
    loads the few it decides on, not every earlier cycle's metrics."""
    path = tmp_path / "b.parquet"
    make_frame(300, 1).drop(columns="y").to_parquet(path)
    assert main(["log-batch", "--model", champion, "--data", str(path)]) == 0
    for _ in range(4):
        assert main(["monitor", "--model", champion, "--last", "1"]) in (0, 1)
    every = tracking.finished_runs(champion, "monitor")
    newest = [r.info.run_id for r in reversed(every)]
    assert [r.info.run_id for r in tracking.latest_runs(champion, "monitor", 3)] == newest[:3]
    assert [r.info.run_id for r in tracking.latest_runs(champion, "monitor", 9)] == newest
    where = f"attributes.run_id = '{newest[2]}'"
    assert [r.info.run_id for r in tracking.latest_runs(champion, "monitor", 1, where)] == [
        newest[2]
    ]
