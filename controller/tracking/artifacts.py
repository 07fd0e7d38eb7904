"""Artifacts and tables: parquet batches logged and read back, the datasets a run used
(MLflow's lineage), and small text artifacts."""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Dataset, DatasetInput, InputTag

from controller.tracking.connection import client


def log_table(frame: pd.DataFrame, path: str) -> None:
    """Log a frame as a parquet artifact of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        frame.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), str(Path(path).parent))


def log_dataset(
    run_id: str,
    frame: pd.DataFrame,
    *,
    name: str,
    source: str | None,
    context: str,
    digest: str | None = None,
) -> Dataset:
    """Record ``frame`` as an input of ``run_id``, as ``mlflow.log_input`` does for
    ``mlflow.data.from_pandas(frame, source=source, name=name)``: the same source, schema
    and profile in the MLflow UI.

    The schema is read from the column dtypes and the digest hashes the frame's bytes
    column by column, so a million-row batch costs a second, not the minutes MLflow takes
    to infer a schema value by value in Python. ``digest``, if the caller computed it
    already, spares hashing the frame again.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.tracking.context import registry
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    # A file is recorded as the source; a frame as the calling code.
    with warnings.catch_warnings():
        # MLflow says a local path "can be interpreted in multiple ways": all of them local.
        warnings.simplefilter("ignore", UserWarning)
        origin = (
            CodeDatasetSource(tags=registry.resolve_tags())
            if source is None
            else resolve_dataset_source(source)
        )
    dataset = Dataset(
        name=name,
        digest=digest or dataset_digest(frame),
        source_type=origin._get_source_type(),
        source=origin.to_json(),
        schema=json.dumps({"mlflow_colspec": dataset_schema(frame).to_dict()}),
        profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}),
    )
    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
    client().log_inputs(run_id, datasets=[DatasetInput(dataset=dataset, tags=tags)])
    return dataset


def dataset_schema(frame: pd.DataFrame):
    """The MLflow column schema of ``frame`` from its dtypes: what ``mlflow.data``
    infers value by value, with a column required when it has no missing value."""
    from mlflow.types import ColSpec, Schema

    return Schema(
        [
            ColSpec(type=_column_type(frame[c]), name=c, required=not frame[c].hasnans)
            for c in frame.columns
        ]
    )


def _column_type(series: pd.Series):
    from mlflow.types import DataType

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):  # typed by its categories, not its codes
        return _column_type(pd.Series(dtype.categories))
    if dtype.kind == "b":
        return DataType.boolean
    if dtype.kind in "iu":
        small = dtype.itemsize < 4 or (dtype.kind == "i" and dtype.itemsize == 4)
        return DataType.integer if small else DataType.long
    if dtype.kind == "f":
        return DataType.float if dtype.itemsize <= 4 else DataType.double
    if dtype.kind == "M":
        return DataType.datetime
    if dtype.kind == "S":
        return DataType.binary
    # Text, or objects: one pass in pandas' C code says what the values are.
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {
        "boolean": DataType.boolean,
        "integer": DataType.long,
        "floating": DataType.double,
        "mixed-integer-float": DataType.double,
        "decimal": DataType.double,
        "bytes": DataType.binary,
        "datetime": DataType.datetime,
        "datetime64": DataType.datetime,
        "date": DataType.datetime,
    }.get(inferred, DataType.string)


def dataset_digest(frame: pd.DataFrame, size: int = 8) -> str:
    """A digest of every value of ``frame`` with its shape, column names and dtypes.

    Fixed-width columns are hashed as their raw bytes; others (text, categories, nullable
    types) through pandas' vectorised per-value hash. ``size`` hex digits of a SHA-256:
    eight by default, as MLflow's own.
    """
    h = hashlib.sha256()
    h.update(repr((frame.shape, [str(c) for c in frame.columns])).encode())
    h.update(repr([str(t) for t in frame.dtypes]).encode())
    for name in frame.columns:
        series = frame[name]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biufmM":
            values = np.ascontiguousarray(series.to_numpy())
        else:
            values = pd.util.hash_pandas_object(series, index=False).to_numpy()
        h.update(values.view(np.uint8))
    return h.hexdigest()[:size]


def read_text_artifact(run, path: str) -> str:
    """A text artifact of ``run``: a found run (no request to find it again) or its id."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(run, str):
            return Path(client().download_artifacts(run, path, tmp)).read_text()
        return Path(_repository(run).download_artifacts(path, tmp)).read_text()


def read_table_artifact(run, path: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A parquet artifact of ``run`` (a found run) as a frame, a file or a directory of
    parquet files (as Spark writes them); read in place when the artifacts are local files.
    ``columns``: only those of them the file has (parquet reads no other column from
    disk)."""
    local = _local_artifact(run.info.artifact_uri, path)
    if local is not None:
        # Mapped, a million-row file is read in half the time it takes through read().
        return _read_parquet(local, columns, memory_map=True)
    with tempfile.TemporaryDirectory() as tmp:
        return _read_parquet(_repository(run).download_artifacts(path, tmp), columns)


def artifact_path(run, path: str, into: str | Path) -> str:
    """A local path to the artifact ``path`` of ``run`` (a found run): in place on a local
    store, else downloaded into the folder ``into``."""
    local = _local_artifact(run.info.artifact_uri, path)
    if local is not None:
        return str(local)
    return _repository(run).download_artifacts(path, str(into))


def has_artifact(run, path: str) -> bool:
    """Whether ``run`` (a found run) holds the artifact ``path``."""
    root = run.info.artifact_uri
    from mlflow.utils.uri import is_local_uri

    if is_local_uri(root, is_tracking_or_registry_uri=False):
        return _local_artifact(root, path) is not None
    listed = _repository(run).list_artifacts(str(Path(path).parent))
    return any(a.path == path for a in listed)


def _repository(run):
    """The artifact store of a found run, reached from its artifact URI: the client's
    by-id calls would ask the tracking server for the run again on every read."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(run.info.artifact_uri)


def _local_artifact(root: str, path: str) -> Path | None:
    """The file or directory behind an artifact under ``root`` on a local store, else None
    (it must be fetched)."""
    from mlflow.utils.file_utils import local_file_uri_to_path
    from mlflow.utils.uri import is_local_uri

    if not is_local_uri(root, is_tracking_or_registry_uri=False):
        return None
    local = Path(local_file_uri_to_path(root)) / path
    return local if local.exists() else None


# Arrow's conversion without consolidating columns into 2-D blocks (and freeing each
# column as it goes) reads a million-row batch three times faster; pandas < 3 lacks it.
_SPLIT = (
    {"to_pandas_kwargs": {"split_blocks": True, "self_destruct": True}}
    if "to_pandas_kwargs" in inspect.signature(pd.read_parquet).parameters
    else {}
)


def _read_parquet(path, columns=None, **options) -> pd.DataFrame:
    if columns is not None:
        import pyarrow.dataset as ds

        # A directory's schema is that of its files (Spark's part files, say).
        names = set(ds.dataset(path, format="parquet").schema.names)
        columns = [c for c in dict.fromkeys(columns) if c in names]
    return pd.read_parquet(path, columns=columns, **_SPLIT, **options)
