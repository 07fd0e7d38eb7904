"""A logged batch's dataset record: what the MLflow UI shows, as MLflow itself would write it.

The oracle is ``mlflow.data.from_pandas``: driftctl builds the same record from dtypes and a
vectorised digest instead of MLflow's value-by-value inference, and must give the same
name, source, schema and profile.
"""

from __future__ import annotations

import json
import warnings

import mlflow
import numpy as np
import pandas as pd
from conftest import make_frame
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.inputs.batches import BATCH_PATH, log_batch


def mixed_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.normal(size=n)
    x[::7] = np.nan
    with_none = np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, n)]
    return pd.DataFrame(
        {
            "float64": x,
            "float32": rng.normal(size=n).astype(np.float32),
            "int64": rng.integers(0, 9, n),
            "int32": rng.integers(0, 9, n).astype(np.int32),
            "int8": rng.integers(0, 9, n).astype(np.int8),
            "bool": rng.random(n) < 0.5,
            "text": np.array(["x", "y", "z"], dtype=object)[rng.integers(0, 3, n)],
            "text_with_missing": with_none,
            "string": pd.array(rng.choice(["p", "q"], n), dtype="string"),
            "category": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "int_category": pd.Categorical(rng.integers(0, 3, n)),
            "when": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "nullable_int": pd.array(np.where(np.arange(n) % 5 == 0, None, 1), dtype="Int64"),
        }
    )


def mlflow_record(frame: pd.DataFrame, **kwargs) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlflow.data.from_pandas(frame, **kwargs).to_dict()


def test_schema_from_dtypes_equals_mlflows_inference():
    frame = mixed_frame()
    ours = {"mlflow_colspec": tracking.dataset_schema(frame).to_dict()}
    assert ours == json.loads(mlflow_record(frame)["schema"])


def test_digest_sees_every_value_and_nothing_else():
    frame = mixed_frame(30_000)
    digest = tracking.dataset_digest(frame)
    assert len(digest) == 8
    assert tracking.dataset_digest(frame.copy()) == digest  # content, not identity
    changed = frame.copy()
    changed.loc[25_000, "float64"] = 1.5  # beyond the first 10,000 rows MLflow hashes
    assert tracking.dataset_digest(changed) != digest
    relabelled = frame.copy()
    relabelled.loc[29_999, "text"] = "w"
    assert tracking.dataset_digest(relabelled) != digest
    assert tracking.dataset_digest(frame.rename(columns={"int8": "small"})) != digest
    assert tracking.dataset_digest(frame.astype({"int64": "float64"})) != digest


def test_a_logged_batch_records_what_from_pandas_would(champion, tmp_path):
    path = tmp_path / "batch.parquet"
    make_frame(700, 9).drop(columns="y").to_parquet(path)
    run_id = log_batch(champion, str(path))

    run = MlflowClient().get_run(run_id)
    [entry] = run.inputs.dataset_inputs
    assert {t.key: t.value for t in entry.tags} == {"mlflow.data.context": "production"}
    logged = tracking.read_table_artifact(run, BATCH_PATH)
    expected = mlflow_record(logged, source=str(path), name=f"{champion}-batch")
    got = entry.dataset
    assert got.name == expected["name"] == "credit-batch"
    assert (got.source_type, json.loads(got.source)) == (
        expected["source_type"],
        json.loads(expected["source"]),
    )
    assert json.loads(got.schema) == json.loads(expected["schema"])
    assert json.loads(got.profile) == json.loads(expected["profile"]) == {
        "num_rows": 700,
        "num_elements": 700 * logged.shape[1],
    }
    assert got.digest == tracking.dataset_digest(logged)


def test_a_frame_is_recorded_with_the_calling_code_as_source(champion):
    run_id = log_batch(champion, make_frame(300, 10).drop(columns="y"))
    [entry] = MlflowClient().get_run(run_id).inputs.dataset_inputs
    assert entry.dataset.source_type == "code"
    assert "tags" in json.loads(entry.dataset.source)
