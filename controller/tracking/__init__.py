"""Everything driftctl reads from or writes to MLflow tracking and the model registry.

The rest of the package receives plain objects (frames, baselines, reports) from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import tempfile
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from controller._errors import DriftctlError, NotFoundError
from controller.profiles import storage
from controller.profiles.baseline import Baseline

TAG = "driftctl."
KIND = TAG + "kind"
MODEL = TAG + "model"
VERSION = TAG + "model_version"
BASELINE = TAG + "baseline"  # on a run: artifact path of its baseline (set last)
BASELINE_RUN = TAG + "baseline_run_id"  # on a model version: the run holding its baseline
BASELINE_PATH = "driftctl/baseline"
EXPERIMENT = "driftctl-{model}"
_BATCH = 1000  # MLflow's limit of metrics per log_batch request


def client() -> MlflowClient:
    return MlflowClient()


def experiment_id(model: str) -> str:
    """The controller's experiment for ``model``, created on first use."""
    name = EXPERIMENT.format(model=model)
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, tags={MODEL: model})
        except MlflowException:  # created meanwhile by a concurrent controller
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def resolve_version(
    name: str, version: str | None = None, alias: str | None = None
) -> ModelVersion:
    """The registered model version named by ``version`` or ``alias`` (default: champion)."""
    c = client()
    try:
        registered = c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = [m.name for m in c.search_registered_models(max_results=20)]
        raise NotFoundError(
            f"no registered model named {name!r} at {mlflow.get_tracking_uri()}"
            + (f" (models there: {known})" if known else " (the registry is empty)"),
            "check the name and --tracking-uri / MLFLOW_TRACKING_URI; register the model "
            "with mlflow.register_model or log_model(..., registered_model_name=...)",
        ) from None
    if version is not None:
        try:
            return c.get_model_version(name, str(version))
        except MlflowException as exc:
            raise NotFoundError(
                f"model {name!r} has no version {version!r}",
                f"pass one of its versions: {_versions(c, name)}",
            ) from exc
    alias = alias or "champion"
    if alias not in registered.aliases:
        raise NotFoundError(
            f"model {name!r} has no alias {alias!r}"
            + (f" (aliases: {sorted(registered.aliases)})" if registered.aliases else ""),
            f"set it with MlflowClient().set_registered_model_alias({name!r}, {alias!r}, "
            f"VERSION) or pass --version (versions: {_versions(c, name)})",
        )
    return c.get_model_version(name, registered.aliases[alias])


def _versions(c: MlflowClient, name: str) -> str:
    found = c.search_model_versions(f"name = '{name}'", max_results=100)
    return ", ".join(str(v) for v in sorted(int(v.version) for v in found)) or "none"


def load_model(mv: ModelVersion):
    """The model behind a version: a scikit-learn estimator when it is one, else pyfunc."""
    return load_model_uri(f"models:/{mv.name}/{mv.version}")


def load_model_uri(uri: str):
    flavors = mlflow.models.get_model_info(uri).flavors
    if "sklearn" in flavors:
        return mlflow.sklearn.load_model(uri)
    return mlflow.pyfunc.load_model(uri)


def has_model(run_id: str, name: str) -> bool:
    """Whether ``run_id`` logged a model called ``name``."""
    try:
        mlflow.models.get_model_info(f"runs:/{run_id}/{name}")
    except (MlflowException, OSError):
        return False
    return True


@contextlib.contextmanager
def atomic_run(experiment: str, run_name: str, tags: dict[str, str], run_id: str | None = None):
    """A run that survives only complete: on any error it is marked failed and deleted.

    Readers select runs with status FINISHED, so a run killed half-way is never read.
    ``run_id`` continues a finished run (one ``mlflow.projects.run`` made) through the
    client, not as the active run; readers then rely on a marker tag set last.
    """
    if run_id:
        for key, value in tags.items():
            client().set_tag(run_id, key, value)
        run = client().get_run(run_id)
    else:
        # Inside a caller's run (a training script, a notebook), ours nests under it.
        nested = mlflow.active_run() is not None
        run = mlflow.start_run(
            experiment_id=experiment, run_name=run_name, tags=tags, nested=nested
        )
    try:
        yield run
    except BaseException:
        if not run_id:
            mlflow.end_run("FAILED")
        with contextlib.suppress(MlflowException):
            client().delete_run(run.info.run_id)
        raise
    if not run_id:
        mlflow.end_run()


def log_metrics(
    run_id: str, metrics: dict[str, float], step: int = 0, timestamp: int | None = None
):
    """Log many metrics in as few requests as MLflow allows."""
    ts = timestamp or int(time.time() * 1000)
    items = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
    c = client()
    for i in range(0, len(items), _BATCH):
        c.log_batch(run_id, metrics=items[i : i + _BATCH])


# Baselines -------------------------------------------------------------------------------


def save_baseline(baseline: Baseline, run_id: str) -> None:
    """Log the baseline's files to ``run_id``; the marker tag goes last, so it is atomic."""
    with tempfile.TemporaryDirectory() as tmp:
        storage.save(baseline, tmp)
        client().log_artifacts(run_id, tmp, BASELINE_PATH)
    client().set_tag(run_id, BASELINE, BASELINE_PATH)


def link_baseline(mv: ModelVersion, run_id: str) -> None:
    """Tag the model version with the run that holds its baseline (shown in the UI)."""
    client().set_model_version_tag(mv.name, mv.version, BASELINE_RUN, run_id)


def load_baseline(mv: ModelVersion) -> tuple[Baseline, str]:
    """The baseline of a model version and the run holding it."""
    c = client()
    for run_id in filter(None, (mv.tags.get(BASELINE_RUN), mv.run_id)):
        try:
            run = c.get_run(run_id)
        except MlflowException:
            continue
        if run.info.lifecycle_stage == "active" and BASELINE in run.data.tags:
            with tempfile.TemporaryDirectory() as tmp:
                local = c.download_artifacts(run_id, run.data.tags[BASELINE], tmp)
                baseline = storage.load(local)
            if mv.tags.get(BASELINE_RUN) != run_id:
                link_baseline(mv, run_id)
            return baseline, run_id
    raise NotFoundError(
        f"model {mv.name!r} version {mv.version} has no driftctl baseline",
        f"log one: driftctl baseline --model {mv.name} --version {mv.version} "
        "--data TRAINING_DATA [--target LABEL], or call controller.log_baseline(...) "
        "in the training run",
    )


def log_baseline(
    data: pd.DataFrame,
    *,
    model=None,
    target: str | None = None,
    predictions=None,
    run_id: str | None = None,
    **options,
) -> Baseline:
    """Record a training baseline in the active MLflow run (or ``run_id``).

    Call it in the run that logs the model: ``monitor`` finds the baseline from any
    registered version of that model. Versions already registered from the run are tagged
    with ``driftctl.baseline_run_id`` at once. ``options`` go to ``build_baseline``.
    """
    from controller.profiles.build import build_baseline

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise DriftctlError(
                "log_baseline needs an MLflow run to log into",
                "call it inside `with mlflow.start_run():` (the training run), or pass run_id",
            )
        run_id = active.info.run_id
    baseline = build_baseline(data, model=model, target=target, predictions=predictions, **options)
    save_baseline(baseline, run_id)
    for mv in client().search_model_versions(f"run_id = '{run_id}'"):
        link_baseline(mv, run_id)
    return baseline


# Production data -------------------------------------------------------------------------


def finished_runs(model: str, kind: str) -> list:
    """Complete runs of one kind (batch, labels, monitor, ...) for ``model``, oldest first.

    Runs are found by their tags in every experiment: a command run by ``mlflow run``
    logs into the project's run, in the experiment the project was run in.
    """
    return sorted(
        model_runs(model, f"tags.`{KIND}` = '{kind}' and attributes.status = 'FINISHED'"),
        key=lambda r: r.info.start_time,
    )


def model_runs(model: str, where: str = "") -> list:
    """Runs tagged with ``model`` in any active experiment, matching ``where``."""
    experiments, token = [], None
    while True:
        page = client().search_experiments(max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    runs, token = [], None
    where = f"tags.`{MODEL}` = '{model}'" + (f" and {where}" if where else "")
    while True:
        page = client().search_runs(experiments, where, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def log_table(frame: pd.DataFrame, path: str) -> None:
    """Log a frame as a parquet artifact of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        frame.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), str(Path(path).parent))


def log_dataset(
    run_id: str, frame: pd.DataFrame, *, name: str, source: str | None, context: str
) -> Dataset:
    """Record ``frame`` as an input of ``run_id``, as ``mlflow.log_input`` does for
    ``mlflow.data.from_pandas(frame, source=source, name=name)``: the same source, schema
    and profile in the MLflow UI.

    The schema is read from the column dtypes and the digest hashes the frame's bytes
    column by column, so a million-row batch costs a second, not the minutes MLflow takes
    to infer a schema value by value in Python.
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
        digest=dataset_digest(frame),
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


def dataset_digest(frame: pd.DataFrame) -> str:
    """A digest of every value of ``frame`` with its shape, column names and dtypes.

    Fixed-width columns are hashed as their raw bytes; others (text, categories, nullable
    types) through pandas' vectorised per-value hash. Eight hex digits, as MLflow's own.
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
    return h.hexdigest()[:8]


def read_text_artifact(run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client().download_artifacts(run_id, path, tmp)).read_text()


def read_table_artifact(run, path: str) -> pd.DataFrame:
    """A parquet artifact of ``run`` (a found run) as a frame; read in place when the
    artifacts are local files."""
    local = _local_artifact(run.info.artifact_uri, path)
    if local is not None:
        # Mapped, a million-row file is read in half the time it takes through read().
        return _read_parquet(local, memory_map=True)
    with tempfile.TemporaryDirectory() as tmp:
        return _read_parquet(client().download_artifacts(run.info.run_id, path, tmp))


def _local_artifact(root: str, path: str) -> Path | None:
    """The file behind an artifact under ``root`` on a local store, else None (it must be
    fetched)."""
    from mlflow.utils.file_utils import local_file_uri_to_path
    from mlflow.utils.uri import is_local_uri

    if not is_local_uri(root, is_tracking_or_registry_uri=False):
        return None
    local = Path(local_file_uri_to_path(root)) / path
    return local if local.is_file() else None


# Arrow's conversion without consolidating columns into 2-D blocks (and freeing each
# column as it goes) reads a million-row batch three times faster; pandas < 3 lacks it.
_SPLIT = (
    {"to_pandas_kwargs": {"split_blocks": True, "self_destruct": True}}
    if "to_pandas_kwargs" in inspect.signature(pd.read_parquet).parameters
    else {}
)


def _read_parquet(path, **options) -> pd.DataFrame:
    return pd.read_parquet(path, **_SPLIT, **options)


def singleton_run(experiment: str, model: str, kind: str, run_name: str) -> str:
    """The one long-lived run of ``kind`` for ``model`` (the drift history, the ledger).

    Created on first use. Should two controllers create it at the same moment, both go on
    with the oldest and the other is deleted.
    """
    where = f"tags.`{KIND}` = '{kind}' and tags.`{MODEL}` = '{model}'"
    order = ["attributes.start_time ASC", "attributes.run_id ASC"]
    runs = client().search_runs([experiment], where, order_by=order, max_results=1)
    if runs:
        return runs[0].info.run_id
    ours = client().create_run(experiment, run_name=run_name, tags={KIND: kind, MODEL: model})
    client().set_terminated(ours.info.run_id)
    first = client().search_runs([experiment], where, order_by=order, max_results=1)[0]
    if first.info.run_id != ours.info.run_id:
        client().delete_run(ours.info.run_id)
    return first.info.run_id
