"""The Spark engine against the pandas engine on the same rows, in a real local Spark.

Oracle: the pandas engine. Counts in the baseline's bins, missing values and row counts
must be equal; moments equal to rounding; a monitor must reach the same verdicts. Samples
differ (each engine draws its own keys) but must be bottom-k samples of the right size.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register_model, runs_of

from controller import tracking
from controller._errors import InputError
from controller.cli import main
from controller.inputs import spark as engine
from controller.inputs.batches import BATCH_PATH, PROFILE_PATH, SAMPLE_PATH, log_batch
from controller.loop.cycle import monitor
from controller.policy import Batches, Policy
from controller.profiles.baseline import PREDICTION, SCORE
from controller.profiles.batch import KEY

pytestmark = pytest.mark.slow
pyspark = pytest.importorskip("pyspark")

FEATURES = ["x1", "x2", "segment", "flag"]
TRUSTED = ("numpy.dtype",)  # the imputer's statistics, for skops
POLICY = Policy(batches=Batches(sample_size=300))


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    # The workers must run this interpreter (the virtual environment's), not python3.
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    warehouse = tmp_path_factory.mktemp("warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("driftctl-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", str(warehouse))
        # Not UTC, so that time stamps without a zone test the engine's own reading of them.
        .config("spark.sql.session.timeZone", "America/New_York")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if before is None:
        del os.environ["PYSPARK_PYTHON"]
    else:
        os.environ["PYSPARK_PYTHON"] = before


def fit_imputing_model(frame: pd.DataFrame):
    """A binary classifier that accepts missing values and unseen categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([
        ("num", SimpleImputer(), ["x1", "x2"]),
        ("seg", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
    ], remainder="passthrough")
    model = Pipeline([("encode", encode), ("clf", LogisticRegression(max_iter=500))])
    return model.fit(frame[FEATURES], frame["y"])


def production(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Production rows with what a profile must count exactly: missing numbers, numbers
    beyond the baseline's range, unseen and missing categories; ids, ISO time stamps and
    labels."""
    rng = np.random.default_rng(seed)
    frame = make_frame(n, seed, shift=shift)
    frame["x1"] = frame["x1"].mask(rng.random(n) < 0.1)
    frame.loc[rng.random(n) < 0.02, "x1"] = 25.0  # far above the reference's maximum
    frame["x2"] = frame["x2"] * rng.choice([1.0, 10.0], n, p=[0.9, 0.1])
    segment = frame["segment"].astype(object)
    segment[rng.random(n) < 0.05] = "e"  # unseen
    segment[rng.random(n) < 0.05] = None
    frame["segment"] = segment
    frame.insert(0, "id", np.arange(n) + 1000 * seed)
    start = pd.Timestamp("2026-03-01", tz="UTC")
    stamps = start + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s")
    frame["ts"] = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


@pytest.fixture
def model(sqlite_uri, spark):
    register_model("spk", fit_imputing_model(make_frame(3000, 0)), make_frame(2000, 1),
                   trusted=TRUSTED, target="y")
    return "spk"


def write(frame: pd.DataFrame, path) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


def profile_of(run_id: str) -> dict:
    return json.loads(tracking.read_text_artifact(run_id, PROFILE_PATH))


def assert_same_profile(spark_run: str, pandas_run: str) -> None:
    ours, oracle = profile_of(spark_run), profile_of(pandas_run)
    for key in ("baseline", "rows", "start", "end", "sample_size", "sample_rows"):
        assert ours[key] == oracle[key], key
    assert ours["columns"].keys() == oracle["columns"].keys()
    for name, col in oracle["columns"].items():
        got = ours["columns"][name]
        assert (got["counts"], got["missing"]) == (col["counts"], col["missing"]), name
        if col["moments"] is None:
            assert got["moments"] is None
            continue
        for stat, value in col["moments"].items():
            assert math.isclose(got["moments"][stat], value, rel_tol=1e-9, abs_tol=1e-12), (
                name, stat, got["moments"][stat], value)


def test_a_scored_batch_profiles_as_the_pandas_engine(model, spark, tmp_path):
    path = write(production(1500, 7, shift=0.3), tmp_path / "batch.parquet")
    cols = dict(id_col="id", timestamp_col="ts", target="y", policy=POLICY)
    oracle = log_batch(model, path, **cols)
    ours = log_batch(model, path, engine="spark", **cols)
    assert_same_profile(ours, oracle)
    # The champion scored on the executors: labels and the positive class's probability.
    assert {PREDICTION, SCORE} <= profile_of(ours)["columns"].keys()

    run = tracking.get_run(ours)
    sample = tracking.read_table_artifact(run, SAMPLE_PATH)
    keys = sample[KEY].to_numpy()
    assert len(sample) == 300 and np.all(np.diff(keys) > 0)
    assert np.all((keys >= 0) & (keys < 1)) and np.all(keys * 2.0**53 == np.round(keys * 2.0**53))
    # 300 smallest of 1,500 uniform keys: the largest is near 300/1500 = 0.2.
    assert 0.15 < keys[-1] < 0.25
    assert set(sample.columns) >= {*FEATURES, "id", "ts", "y", PREDICTION, SCORE}

    # The batch's rows are the narrow columns, a parquet directory read with projection.
    assert tracking.has_artifact(run, BATCH_PATH)
    rows = tracking.read_table_artifact(run, BATCH_PATH)
    assert sorted(rows.columns) == sorted(["id", "ts", "y", PREDICTION, SCORE])
    assert len(rows) == 1500
    narrow = tracking.read_table_artifact(run, BATCH_PATH, ["id", PREDICTION, "x1"])
    assert list(narrow.columns) == ["id", PREDICTION]
    full = tracking.read_table_artifact(tracking.get_run(oracle), BATCH_PATH)
    joined = full.merge(rows, on="id", suffixes=("", "_spark"))
    assert (joined[PREDICTION] == joined[PREDICTION + "_spark"]).all()
    np.testing.assert_allclose(joined[SCORE], joined[SCORE + "_spark"], rtol=1e-12)

    tags = run.data.tags
    assert tags[engine.SOURCE] == path and tags[engine.FINGERPRINT].startswith("1 files, 1500 rows")
    (dataset,) = run.inputs.dataset_inputs
    assert json.loads(dataset.dataset.profile) == {"num_rows": 1500}
    assert dataset.dataset.digest == tags[engine.FINGERPRINT].split()[-1][:8]
    assert json.loads(dataset.dataset.source) == {"path": path}


def test_only_the_k_smallest_keys_reach_the_driver(spark):
    frame = spark.range(5000).selectExpr("id", "id * 0.5 AS x").repartition(4)
    kept = engine._bottom_k(frame, 50, seed=1)
    assert len(kept) == 50 and kept[KEY].is_monotonic_increasing
    # The plan Spark runs: a top-k per partition merged on an executor, limit 50.
    plan = engine.smallest_keys(frame, 50, seed=1)._jdf.queryExecution().executedPlan()
    assert "TakeOrderedAndProject(limit=50" in plan.toString()
    # Same rows, same keys: the sample depends on the content and the seed only.
    again = engine._bottom_k(frame.repartition(3), 50, seed=1)
    pd.testing.assert_frame_equal(kept, again)


def test_served_predictions_profile_as_the_pandas_engine(model, spark, tmp_path):
    frame = production(800, 8)
    frame["served"] = (frame["x1"].fillna(0) > 0).astype(float)  # whole floats: labels "0", "1"
    frame["ts"] = frame["ts"].str.rstrip("Z")  # time stamps without a zone: UTC in both engines
    path = write(frame, tmp_path / "served.parquet")
    cols = dict(id_col="id", timestamp_col="ts", target="y", prediction_col="served", policy=POLICY)
    oracle = log_batch(model, path, **cols)
    ours = log_batch(model, spark.read.parquet(path), **cols)  # a DataFrame: Spark's engine
    assert_same_profile(ours, oracle)
    assert SCORE not in profile_of(ours)["columns"]
    # A DataFrame has no source to point at; its rows cannot be read back.
    tags = tracking.get_run(ours).data.tags
    assert engine.SOURCE not in tags
    with pytest.raises(InputError, match="without a path or table"):
        engine.read_source_rows(tags, FEATURES)


def test_a_monitor_reaches_the_same_verdicts(model, spark, tmp_path):
    frame = make_frame(1500, 9, shift=1.5)  # x1 clearly drifted; x2, segment, flag as in training
    frame.insert(0, "id", np.arange(1500))
    path = write(frame, tmp_path / "drifted.parquet")
    log_batch(model, path, id_col="id", target="y", policy=POLICY)
    oracle = monitor(model, policy=POLICY)
    log_batch(model, path, id_col="id", target="y", engine="spark", policy=POLICY)
    ours = monitor(model, policy=POLICY)
    assert oracle.drifted == ["x1"]
    assert (ours.verdict, ours.drifted) == (oracle.verdict, oracle.drifted)
    assert ours.n_rows == oracle.n_rows == 1500


def test_a_window_reads_the_rows_back_through_spark(model, spark, tmp_path):
    """Retraining and a window cut through a batch read its full rows back from the
    source, with the predictions logged for them joined by id; a cycle on such a window
    reaches the verdicts of the same rows logged by the pandas engine."""
    from controller.loop.window import load_window

    frame = production(1500, 13, shift=1.0)
    path = write(frame, tmp_path / "batch.parquet")
    cols = dict(id_col="id", timestamp_col="ts", target="y", policy=POLICY)
    through_spark = log_batch(model, path, engine="spark", **cols)
    baseline = tracking.load_baseline(tracking.resolve_version(model))[0]
    rows = load_window(model, baseline, last=1).frame.sort_values("id").reset_index(drop=True)
    assert len(rows) == 1500 and rows["id"].tolist() == sorted(frame["id"])
    expected = frame.sort_values("id").reset_index(drop=True)
    np.testing.assert_allclose(rows["x1"], expected["x1"])
    assert rows["__prediction__"].notna().all() and rows["__version__"].eq("1").all()

    since = "2026-03-04T00:00Z"
    ours = monitor(model, since=since, policy=POLICY)
    log_batch(model, path, **cols)  # the same rows, copied by the pandas engine
    tracking.delete_run(through_spark)  # so that the oracle's window holds them once
    oracle = monitor(model, since=since, policy=POLICY)
    assert 0 < ours.n_rows < 1500 and oracle.n_rows == ours.n_rows
    # The sample a window's tests draw differs from one logging of the rows to the next (x2's
    # p-value ranged from 0.00001 to 0.006 over runs), so a feature at the edge of its
    # threshold may fall either way; the clear ones must agree.
    clear = {f.feature for f in oracle.features if f.p_value < 1e-6 or f.p_value > 0.1}
    assert clear >= {"x1", "segment", "flag"}, oracle.features
    assert [f for f in ours.drifted if f in clear] == [f for f in oracle.drifted if f in clear]


def test_bad_input_gives_one_error_and_no_run(model, spark, tmp_path, capsys):
    frame = production(200, 10)
    cols = dict(engine="spark", id_col="id", timestamp_col="ts", target="y")

    def spark_batch(bad: pd.DataFrame, **more):
        path = write(bad, tmp_path / f"bad{len(list(tmp_path.iterdir()))}.parquet")
        return log_batch(model, path, **{**cols, **more})

    with pytest.raises(InputError, match="'when' named on the command line is not in the batch"):
        spark_batch(frame, timestamp_col="when")
    with pytest.raises(InputError, match="id column 'id' has duplicate values"):
        spark_batch(pd.concat([frame, frame.iloc[:2]]))
    with pytest.raises(InputError, match=r"missing feature column\(s\) \['x2'\]"):
        spark_batch(frame.drop(columns="x2"))
    with pytest.raises(InputError, match="column 'x1' is numeric in the baseline but categorical"):
        spark_batch(frame.assign(x1=frame["x1"].astype(str)))
    served = frame.assign(served=np.where(np.arange(200) < 5, np.nan, 1.0))
    with pytest.raises(InputError, match="prediction column 'served' has 5 missing"):
        spark_batch(served, prediction_col="served")
    bad_times = frame.assign(ts=frame["ts"].where(np.arange(200) > 0, "last tuesday"))
    with pytest.raises(InputError, match="'ts' cannot be read as dates"):
        spark_batch(bad_times)
    frame.to_csv(tmp_path / "batch.csv", index=False)
    with pytest.raises(InputError, match="the Spark engine reads parquet"):
        log_batch(model, tmp_path / "batch.csv", **cols)

    assert main(["log-batch", "--model", model, "--table", "anything"]) == 2
    assert "only the Spark engine reads" in capsys.readouterr().err
    assert runs_of(model, "batch") == []


def test_a_table_batch_and_its_rows_read_back(model, spark, tmp_path, capsys):
    frame = production(600, 11).assign(prediction=1)  # served: the champion need not score
    spark.createDataFrame(frame).write.saveAsTable("batches_t")
    args = ["log-batch", "--engine", "spark", "--model", model, "--table", "batches_t",
            "--id-col", "id", "--timestamp-col", "ts", "--target", "y"]
    assert main(args) == 0, capsys.readouterr().err
    (run,) = runs_of(model, "batch")
    tags = run.data.tags
    assert tags[engine.SOURCE] == "table:batches_t"
    rows = engine.read_source_rows(tags, [*FEATURES, "id", "nonexistent"])
    assert list(rows.columns) == [*FEATURES, "id"]
    rows = rows.sort_values("id").reset_index(drop=True)
    expected = frame[[*FEATURES, "id"]]
    pd.testing.assert_frame_equal(rows.drop(columns="segment"), expected.drop(columns="segment"))
    assert rows["segment"].fillna("?").tolist() == expected["segment"].fillna("?").tolist()

    # A parquet directory that gains a file has changed: its rows are refused.
    folder = tmp_path / "dir"
    folder.mkdir()
    write(frame.iloc[:300], folder / "part-0.parquet")
    logged = log_batch(model, str(folder), engine="spark", id_col="id", timestamp_col="ts",
                       target="y", policy=POLICY)
    tags = tracking.get_run(logged).data.tags
    assert len(engine.read_source_rows(tags, ["id"])) == 300
    write(frame.iloc[300:], folder / "part-1.parquet")
    with pytest.raises(InputError, match=f"the rows of {folder} changed since they were logged"):
        engine.read_source_rows(tags, ["id"])


def test_a_spark_baseline_bins_as_the_pandas_engine(sqlite_uri, spark, tmp_path, capsys):
    data = production(3000, 12).drop(columns=["id", "ts"])
    path = write(data, tmp_path / "train.parquet")
    model = fit_imputing_model(make_frame(3000, 0))
    register_model("pan", model, trusted=TRUSTED)
    register_model("spk", model, trusted=TRUSTED)
    assert main(["baseline", "--model", "pan", "--data", path, "--target", "y"]) == 0
    args = ["baseline", "--engine", "spark", "--model", "spk", "--data", path, "--target", "y"]
    assert main(args) == 0, capsys.readouterr().err
    oracle = tracking.load_baseline(tracking.resolve_version("pan"))[0]
    ours = tracking.load_baseline(tracking.resolve_version("spk"))[0]
    # 3,000 rows fit the driver's sample: the same bins, counted over the same rows.
    assert ours.n_rows == oracle.n_rows == 3000
    for name, p in oracle.features.items():
        q = ours.features[name]
        assert (q.edges, q.categories, q.counts, q.missing) == (
            p.edges, p.categories, p.counts, p.missing), name
    assert ours.prediction.counts == oracle.prediction.counts
    assert ours.positive_class == oracle.positive_class

    # From a sample of 1,000 rows: its bins, counted by Spark over all 3,000 rows.
    register_model("small", model, trusted=TRUSTED)
    args = ["baseline", "--engine", "spark", "--model", "small", "--data", path, "--target", "y",
            "--spark-sample-size", "1000"]
    assert main(args) == 0, capsys.readouterr().err
    small = tracking.load_baseline(tracking.resolve_version("small"))[0]
    assert small.n_rows == 3000 and len(small.reference) == 1000
    for name, p in small.features.items():
        full = p.observe(data[name])  # the pandas engine's counts in the same bins
        assert (p.counts, p.missing) == (full.counts, full.missing), name
        if p.kind == "numeric":
            assert math.isclose(p.mean, full.mean, rel_tol=1e-9)
            assert math.isclose(p.std, full.std, rel_tol=1e-9)


def test_without_pyspark_the_engine_says_how_to_install_it():
    script = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from controller.inputs.spark import session\n"
        "try:\n    session()\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc.fix)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "InputError pip install 'driftctl[spark]'" in done.stdout, done.stderr



def test_late_labels_are_matched_in_spark_as_by_pandas(model, spark, tmp_path, capsys):
    """Labels read by Spark go to the same batches, in the same numbers, as the pandas
    engine sends them, and a cycle joins them alike."""
    first, second = production(800, 14), production(800, 15)
    second.loc[:99, "id"] = first.loc[:99, "id"].to_numpy()  # ids seen again later
    for frame in (first, second):
        log_batch(model, write(frame.drop(columns="y"), tmp_path / f"b{frame['id'].iloc[-1]}.pq"),
                  engine="spark", id_col="id", timestamp_col="ts", policy=POLICY)
    stray = pd.DataFrame({"id": [-1, -2], "y": [0, 1]})
    labels = pd.concat([first[["id", "y"]].iloc[:500], second[["id", "y"]].iloc[400:], stray])
    path = write(labels, tmp_path / "labels.parquet")
    assert main(["log-labels", "--engine", "spark", "--model", model, "--data", path,
                 "--id-col", "id", "--target", "y"]) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert "900 matched to their batches, 2 whose id no batch holds" in said
    from controller.inputs.batches import log_labels

    oracle = log_labels(model, labels, id_col="id", target="y")
    (ours,) = [r for r in runs_of(model, "labels") if r.info.run_id != oracle]
    want = tracking.get_run(oracle).data.tags
    got = ours.data.tags
    keys = [k for k in want if k.startswith("driftctl.batch.") or k.endswith("matched_rows")]
    assert len(keys) == 4 and {k: got[k] for k in keys} == {k: want[k] for k in keys}
    from controller.inputs.batches import labels_part, matched_batches

    for batch in matched_batches(want):
        a = tracking.read_table_artifact(ours, labels_part(batch)).sort_values("__id__")
        b = tracking.read_table_artifact(tracking.get_run(oracle), labels_part(batch))
        b = b.sort_values("__id__")
        assert a["__id__"].tolist() == b["__id__"].tolist()
        assert a["__label__"].tolist() == b["__label__"].tolist()
    # the last batch's labels: the 100 ids it shares with the first, and its own 400
    assert monitor(model, policy=POLICY).n_labelled == 500


def test_the_staging_folder_is_the_one_named(model, spark, tmp_path, monkeypatch):
    """On a cluster the executors write what the driver logs to a folder every node
    mounts: $DRIFTCTL_SPARK_STAGING. It is used, and left empty."""
    staging = tmp_path / "shared"
    staging.mkdir()
    monkeypatch.setenv("DRIFTCTL_SPARK_STAGING", str(staging))
    seen, log_directory = [], tracking.log_directory

    def spy(run, local, path):  # records where each folder is logged from, and logs it
        seen.append(local)
        log_directory(run, local, path)

    monkeypatch.setattr(tracking, "log_directory", spy)
    frame = production(300, 16).assign(prediction=1)
    run = log_batch(model, write(frame, tmp_path / "b.parquet"), engine="spark", id_col="id",
                    timestamp_col="ts", target="y", policy=POLICY)
    assert seen and all(str(p).startswith(str(staging)) for p in seen)
    assert list(staging.iterdir()) == []
    assert len(tracking.read_table_artifact(tracking.get_run(run), BATCH_PATH)) == 300


def test_spark_submit_runs_the_command_line(model, sqlite_uri, tmp_path):
    """``spark-submit mlproject/spark_submit.py`` is how a cluster runs driftctl: the
    same command line, in a driver spark-submit configured."""
    from pathlib import Path

    frame = production(400, 17).assign(prediction=1)
    path = write(frame, tmp_path / "b.parquet")
    submit = Path(sys.executable).parent / "spark-submit"
    script = Path(__file__).parent.parent / "mlproject" / "spark_submit.py"
    done = subprocess.run(
        [str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false", str(script),
         "log-batch", "--engine", "spark", "--model", model, "--data", path, "--id-col", "id",
         "--timestamp-col", "ts", "--target", "y", "--tracking-uri", sqlite_uri],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logged batch of spk as run" in done.stdout
    (run,) = runs_of(model, "batch")
    assert run.data.tags["driftctl.rows_engine"] == "spark"


def test_a_spark_batch_finds_the_labels_logged_before_it(model, spark, tmp_path):
    from controller.inputs.batches import log_labels

    frame = production(500, 18)
    log_labels(model, frame[["id", "y"]].iloc[:200], id_col="id", target="y")
    run = log_batch(model, write(frame.drop(columns="y"), tmp_path / "b.parquet"),
                    engine="spark", id_col="id", timestamp_col="ts", policy=POLICY)
    assert tracking.get_run(run).data.tags["driftctl.early_labels"] == "200"
    assert monitor(model, policy=POLICY).n_labelled == 200


def test_a_batch_the_champion_cannot_score_is_logged_without_predictions(model, spark, tmp_path):
    """Infinities the logistic regression refuses: the Spark batch is logged all the
    same, without predictions, as the pandas engine logs it; its cycle says so."""
    frame = production(600, 19).drop(columns="y")
    frame.loc[frame.index[::5], "x2"] = np.inf
    run = log_batch(model, write(frame, tmp_path / "b.parquet"), engine="spark", id_col="id",
                    timestamp_col="ts", policy=POLICY)
    tags = tracking.get_run(run).data.tags
    assert "the model failed to predict" in tags["driftctl.unscored"]
    narrow = tracking.read_table_artifact(tracking.get_run(run), BATCH_PATH)
    assert PREDICTION not in narrow.columns and len(narrow) == 600
    report = monitor(model, policy=POLICY)
    assert report.triage.kind == "data_quality"
    assert any("logged without predictions" in n for n in report.notes)
