"""Edge cases users run into: CSV types, mixed batches, high cardinality, odd labels."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register, register_model, runs_of

from controller import Policy, assess, build_baseline, monitor
from controller.cli import main
from controller.inputs.batches import log_batch, log_labels
from controller.profiles.profile import learn
from controller.results.naming import metric_safe
from controller.statistics.drift import judge


def test_baseline_from_served_predictions_without_loading_the_model(sqlite_uri, tmp_path,
                                                                    capsys):
    register("plain", baseline=False)
    data = make_frame(800, 2)
    data["pred"] = (data.x1 > 0).astype(int)
    data.to_csv(tmp_path / "train.csv", index=False)
    assert main(["baseline", "--model", "plain", "--version", "1", "--data",
                 str(tmp_path / "train.csv"), "--target", "y", "--prediction-col", "pred"]) == 0
    out = capsys.readouterr().out
    assert "baseline of plain version 1: 4 features, 800 rows" in out  # not 'y' nor 'pred'


def test_window_mixing_scored_and_served_batches(champion, capsys):
    log_batch("credit", make_frame(300, 3), target="y")  # scored by the champion
    served = make_frame(300, 4).assign(prediction=lambda f: (f.x1 > 0).astype(int))
    log_batch("credit", served, target="y")
    report = monitor("credit", last=2)
    assert report.n_labelled == 600
    assert set(report.performance) == {"accuracy", "f1"}  # no scores for half the rows


def test_served_predictions_and_labels_are_validated(champion, tmp_path, capsys):
    bad = make_frame(200, 5).assign(prediction=1.0)
    bad.loc[3, "prediction"] = np.nan
    with pytest.raises(ValueError, match="prediction column 'prediction' has 1 missing"):
        log_batch("credit", bad.drop(columns="y"))
    assert runs_of("credit", "batch") == []


def test_regression_labels_must_be_numbers(sqlite_uri, tmp_path):
    from sklearn.linear_model import Ridge

    x = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) % 7})
    register_model("reg", Ridge().fit(x, x.a), x.assign(t=x.a), target="t")
    labels = pd.DataFrame({"id": [1, 2], "t": ["high", "low"]})
    with pytest.raises(ValueError, match="label column 't' is not numeric"):
        log_labels("reg", labels, id_col="id", target="t")


def test_high_cardinality_categories_do_not_drift_on_fresh_samples():
    rng = np.random.default_rng(0)
    codes = [f"c{i}" for i in range(3000)]
    ref = pd.DataFrame({"zip": rng.choice(codes, 20_000), "x": rng.normal(size=20_000)})
    baseline = build_baseline(ref)
    assert baseline.features["zip"].buckets == 1000
    flagged = 0
    for seed in range(5):
        r = np.random.default_rng(100 + seed)
        window = pd.DataFrame({"zip": r.choice(codes, 20_000), "x": r.normal(size=20_000)})
        report = assess(baseline, window, Policy(seed=seed))
        flagged += len(report.drifted)
        assert not any(q.alert for q in report.quality)
    assert flagged == 0


def test_a_statistic_does_not_depend_on_the_other_features():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=5000),
                        "wide": rng.choice([f"k{i}" for i in range(800)], 5000)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 2000),
                        "wide": rng.choice([f"k{i}" for i in range(800)], 2000)})
    both = {n: learn(ref[n]) for n in ref}
    alone = judge({"x": both["x"]}, ref, cur, Policy())[0]
    together = judge(both, ref, cur, Policy())[0]
    assert alone.statistics == together.statistics


def test_csv_types_follow_the_baseline(champion, tmp_path):
    frame = make_frame(300, 6).drop(columns="y")
    frame["flag"] = frame["flag"].astype(object)
    frame.loc[0, "flag"] = None  # a boolean with a gap arrives from CSV as objects
    frame["prediction"] = 1  # served: this champion cannot score missing values
    frame.to_csv(tmp_path / "b.csv", index=False)
    log_batch("credit", tmp_path / "b.csv")
    (run,) = runs_of("credit", "batch")
    assert run.data.tags["driftctl.rows"] == "300"


def test_zip_codes_keep_their_leading_zeros(sqlite_uri, tmp_path):
    from sklearn.dummy import DummyClassifier

    ref = pd.DataFrame({"zip": ["02139", "10001", "94105"] * 100, "n": np.arange(300.0)})
    register_model("zips", DummyClassifier().fit(ref, np.arange(300) % 2), ref)
    ref.to_csv(tmp_path / "b.csv", index=False)
    log_batch("zips", tmp_path / "b.csv")
    report = monitor("zips")
    unseen = [q for q in report.quality if q.check == "unseen_share"]
    assert unseen[0].value == 0.0 and report.verdict == "ok"


def test_late_labels_join_whatever_the_id_type(champion, tmp_path):
    batch = make_frame(100, 7)
    batch.insert(0, "id", np.arange(100))
    log_batch("credit", batch.drop(columns="y"), id_col="id")
    labels = batch[["id", "y"]].astype({"id": "Int64"})
    labels.loc[5, "id"] = pd.NA  # a gap would make pandas read the ids as floats
    labels.to_csv(tmp_path / "labels.csv", index=False)
    # and a frame whose ids became floats joins as well
    log_labels("credit", labels.dropna().astype({"id": float}).iloc[:10], id_col="id",
               target="y")
    log_labels("credit", tmp_path / "labels.csv", id_col="id", target="y")
    report = monitor("credit")
    assert report.n_labelled == 99


def test_a_feature_without_values_reports_no_statistic():
    base = build_baseline(make_frame(2000, 8).drop(columns="y"))
    window = make_frame(500, 9).drop(columns="y").assign(x1=np.nan)
    report = assess(base, window, Policy())
    x1 = next(f for f in report.features if f.feature == "x1")
    assert np.isnan(x1.value) and not x1.drifted
    assert all(np.isnan(v) for v in x1.statistics.values())
    assert "drift.psi.x1" not in report.metrics()
    assert report.metrics()["quality.missing_rate_change.x1"] == 1.0
    json.dumps(report.to_dict(), allow_nan=False)


def test_numeric_time_stamps_are_refused(champion):
    batch = make_frame(50, 10).drop(columns="y").assign(ts=1767225600)
    with pytest.raises(ValueError, match="holds numbers"):
        log_batch("credit", batch, timestamp_col="ts")


def test_a_name_that_looks_mapped_is_mapped_too():
    mapped = metric_safe("income ($)")
    assert metric_safe(mapped) != mapped


def test_logging_inside_a_callers_run_nests(champion):
    with mlflow.start_run() as outer:
        log_batch("credit", make_frame(100, 11).drop(columns="y"))
    (run,) = runs_of("credit", "batch")
    assert run.data.tags["mlflow.parentRunId"] == outer.info.run_id


def test_quality_alert_without_drift_has_its_own_exit_status(champion, capsys):
    batch = make_frame(2000, 12).drop(columns="y")
    batch.loc[:300, "x2"] = np.nan  # 15% missing, the baseline had none
    champion_model = mlflow.sklearn.load_model("models:/credit@champion")
    served = champion_model.predict(batch.fillna({"x2": batch.x2.mean()}))
    log_batch("credit", batch.assign(prediction=served))
    assert main(["monitor", "--model", "credit", "--exit-code"]) == 4
    assert "quality alert: missing_rate_change on 'x2'" in capsys.readouterr().out
