"""Production data: batches of inference inputs and predictions, and late labels.

A batch is an MLflow run in the model's controller experiment (``driftctl-<model>``),
tagged ``driftctl.kind = batch``, holding ``driftctl/batch.parquet``: the features under
their own names, the id and time-stamp columns if named, an inline target if given, and
the predictions in ``__prediction__`` (and ``__score__``, the positive-class probability of
a binary classifier). Beside it, ``driftctl/profile.json`` and ``driftctl/sample.parquet``
hold the batch's profile in the baseline's bins and its uniform sample of rows
(``controller.profiles.batch``), which merge across batches. Labels logged later are runs
of kind ``labels`` holding ``driftctl/labels.parquet`` with the columns ``__id__`` and
``__label__``. The window those runs make up is read by ``controller.loop.window``.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pandas as pd

from controller import tracking
from controller._errors import InputError, shown
from controller.inputs import source
from controller.inputs.model import predict
from controller.inputs.source import BATCH_PATH, ID, LABEL, UNSCORED
from controller.inputs.tables import (
    check_names,
    read_table,
    require_label_columns,
    require_schema,
)
from controller.policy import Policy
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.profiles.batch import BatchProfile
from controller.statistics.performance import as_labels

LABELS_PATH = "driftctl/labels.parquet"
PROFILE_PATH = "driftctl/profile.json"
SAMPLE_PATH = "driftctl/sample.parquet"
START, END = tracking.TAG + "start", tracking.TAG + "end"
EARLY = tracking.TAG + "early_labels"  # on a batch: labels logged before it that it holds
MATCHED = tracking.TAG + "matched_rows"  # on a labels run: its labels that joined a batch
UNMATCHED = tracking.TAG + "unmatched_rows"
_MATCHED_IN = tracking.TAG + "batch."  # + batch run id, on a labels run: rows it matched


def batch_runs(name: str) -> list:
    """The model's complete batch runs, oldest first by the end of their rows' time range."""
    return sorted(tracking.finished_runs(name, "batch"), key=lambda r: r.data.tags[END])


def labels_part(batch_run_id: str) -> str:
    """Where a labels run keeps the labels it matched to one batch."""
    return f"driftctl/labels/{batch_run_id}.parquet"


def matched_batches(tags: dict) -> list[str]:
    """The batch runs a labels run (its tags) matched labels to."""
    return [k[len(_MATCHED_IN) :] for k in tags if k.startswith(_MATCHED_IN)]


def log_batch(
    name: str,
    data: pd.DataFrame | str | Path | None = None,  # or a Spark DataFrame
    *,
    id_col: str | None = None,
    timestamp_col: str | None = None,
    prediction_col: str | None = None,
    target: str | None = None,
    alias: str = "champion",
    policy: Policy | None = None,
    engine: str = "pandas",
    table: str | None = None,
) -> str:
    """Validate a batch against the champion's baseline and log it; returns the run id.

    ``data`` is a frame or the path of a parquet or CSV file. Predictions come from
    ``prediction_col``, else from a column named ``prediction`` that is not a feature, else
    from the champion. The batch's profile keeps a sample of ``policy.batches.sample_size``
    rows.

    The Spark engine (``engine="spark"``, or ``data`` a Spark DataFrame) reads a parquet
    file or directory, or the catalog ``table``, and profiles it on the executors; the run
    holds the narrow columns and a pointer to the full rows (``controller.inputs.spark``).
    """
    policy = policy or Policy()
    spark = spark_engine(engine, data, table)
    mv = tracking.resolve_version(name, alias=alias)
    baseline, _ = tracking.load_baseline(mv)
    cols = {"id_col": id_col, "timestamp_col": timestamp_col, "target": target}
    if spark is not None:
        with spark.batch(
            data,
            baseline,
            f"models:/{mv.name}/{mv.version}",
            table=table,
            prediction_col=prediction_col,
            sample_size=policy.batches.sample_size,
            **cols,
        ) as batch:
            log_rows = partial(batch.log_rows, path=BATCH_PATH, dataset=f"{name}-batch")
            profile = batch.profile
            early = _early_labels(name, partial(batch.holding, id_col=id_col)) if id_col else None
            return _log(
                name, mv, profile, profile.start, profile.end, cols, batch.tags, log_rows, early
            )
    frame = _read(data, baseline, id_col)
    check_names(frame)
    if prediction_col is None and "prediction" in frame and "prediction" not in baseline.features:
        prediction_col = "prediction"
    declared = [c for c in (id_col, timestamp_col, prediction_col, target) if c]
    for col in declared:
        if col not in frame.columns:
            raise InputError(
                f"column {col!r} named on the command line is not in the batch "
                f"(columns: {shown(frame.columns)})",
                "check the spelling of --id-col, --timestamp-col, --prediction-col, --target",
            )
    features = list(baseline.features)
    require_schema(frame, baseline.features, declared)
    if id_col and frame[id_col].duplicated().any():
        raise InputError(
            f"id column {id_col!r} has duplicate values "
            f"(e.g. {shown(frame[id_col][frame[id_col].duplicated()], 3)})",
            "give every row a unique id, so that late labels join to exactly one row",
        )
    times = _timestamps(frame, timestamp_col) if timestamp_col else None
    if target:
        _check_labels(frame[target], baseline, f"target column {target!r}")

    out = frame[features + [c for c in (id_col, timestamp_col, target) if c]].copy()
    unscored = {}
    if prediction_col:
        served = frame[prediction_col]
        if served.isna().any():
            raise InputError(
                f"prediction column {prediction_col!r} has {int(served.isna().sum())} "
                "missing value(s)",
                "log the prediction served for every row, or leave the column out to let "
                "the champion predict",
            )
        out[PREDICTION] = served.to_numpy()
    else:
        try:
            preds = predict(tracking.load_model(mv), frame[features])
        except InputError as exc:  # broken values the champion cannot score: still logged
            unscored = {UNSCORED: str(exc).splitlines()[0][:1000]}
        else:
            out[PREDICTION] = preds.values
            if preds.score is not None:
                out[SCORE] = preds.score
    if baseline.task == "classification" and PREDICTION in out:
        out[PREDICTION] = as_labels(out[PREDICTION].to_numpy())

    # The sample's keys are seeded by the batch's content, so logging the same rows again
    # keeps the same sample; one hash serves the seed and the dataset's digest.
    digest = tracking.dataset_digest(out, size=64)
    profile = BatchProfile.build(
        out,
        baseline,
        sample_size=policy.batches.sample_size,
        seed=int(digest, 16),
        times=times,
    )

    pointer = {}
    if _points(policy.batches, data, len(out)):
        pointer = source.pointer(Path(data).resolve(), "pandas", source.file_fingerprint(data))

    def log_rows(run_id: str) -> None:
        # A batch with a pointer keeps the narrow columns a cycle reads, not the features.
        kept = out.drop(columns=features) if pointer else out
        tracking.log_table(kept, BATCH_PATH)
        tracking.log_dataset(
            run_id,
            out,
            name=f"{name}-batch",
            source=None if isinstance(data, pd.DataFrame) else str(data),
            context="production",
            digest=digest[:8],
        )

    early = None
    if id_col:
        ids = as_labels(out[id_col])
        early = _early_labels(name, lambda labels: labels[labels[ID].isin(ids)])
    start, end = (times.min(), times.max()) if times is not None else (None, None)
    tags = {**pointer, **unscored}
    return _log(name, mv, profile, start, end, cols, tags, log_rows, early)


def _points(rules, data, rows: int) -> bool:
    """Whether a batch read by the pandas engine keeps a pointer to its file rather than a
    copy of its rows (a frame has no file to point to)."""
    if isinstance(data, pd.DataFrame) or rules.rows == "copy":
        return False
    return rules.rows == "pointer" or rows > rules.copy_max_rows


def read_rows(run, features) -> pd.DataFrame:
    """A batch's full rows (its ``features``, the columns named when it was logged, and its
    predictions): its copy, or read back through its engine from where they were kept."""
    tags = run.data.tags
    engine = tags.get(source.ENGINE)
    if engine is None:
        return tracking.read_table_artifact(run, BATCH_PATH)
    narrow = tracking.read_table_artifact(run, BATCH_PATH)
    id_col = tags.get(tracking.TAG + "id_col")
    if engine == "pandas":  # the file as it was: same rows, same order
        rows = source.read_file_rows(tags, lambda path: _read_file(path, features, id_col))
        return pd.concat([rows[list(features)], narrow], axis=1)
    from controller.inputs import spark

    named = [c for c in narrow.columns if c not in (PREDICTION, SCORE)]
    rows = spark.read_source_rows(tags, [*features, *named])
    if not id_col:  # rows come back in any order: without ids, they are scored again
        return rows
    outputs = narrow[[id_col, *(c for c in (PREDICTION, SCORE) if c in narrow)]]
    return rows.merge(outputs, on=id_col, how="left", validate="one_to_one")


def _log(
    name, mv, profile: BatchProfile, start, end, cols: dict, tags: dict, log_rows, early=None
) -> str:
    """Log a checked batch as a run: its tags, rows (``log_rows(run_id)``, the engine's
    own), sample, profile and ``early`` labels. ``start`` and ``end`` are its event-time
    range, if known."""
    now = pd.Timestamp.now(tz="UTC")
    start = start if start is not None else now
    end = end if end is not None else now
    tags = {
        tracking.KIND: "batch",
        tracking.MODEL: name,
        tracking.VERSION: mv.version,
        START: start.isoformat(),
        END: end.isoformat(),
        tracking.TAG + "rows": str(profile.rows),
        **{tracking.TAG + key: col for key, col in cols.items() if col},
        **tags,
        **({EARLY: str(len(early))} if early is not None else {}),
    }
    experiment = tracking.experiment_id(name)
    with tracking.atomic_run(
        experiment, f"batch {end:%Y-%m-%d %H:%M}", tags, parent=_production(experiment, name)
    ) as run:
        log_rows(run.info.run_id)
        if early is not None:
            tracking.log_table(early, labels_part(run.info.run_id))
        tracking.log_table(profile.sample, SAMPLE_PATH)
        tracking.log_dict(run.info.run_id, profile.to_dict(), PROFILE_PATH)
    return run.info.run_id


def _early_labels(name: str, held) -> pd.DataFrame | None:
    """Labels logged before their batch (no batch held their ids then) that this batch
    holds: ``held(labels)`` keeps those whose id it holds. The latest label of an id wins."""
    where = (
        f"tags.`{tracking.KIND}` = 'labels' and attributes.status = 'FINISHED' "
        f"and tags.`{UNMATCHED}` != '0'"
    )
    runs = sorted(tracking.model_runs(name, where), key=lambda r: r.info.start_time)
    # A labels run with unmatched rows wrote them to LABELS_PATH in the same atomic run.
    parts = [tracking.read_table_artifact(r, LABELS_PATH) for r in runs]
    if not parts:
        return None
    waiting = pd.concat(parts, ignore_index=True).drop_duplicates(ID, keep="last")
    waiting[ID] = as_labels(waiting[ID])
    found = held(waiting)
    return found.reset_index(drop=True) if len(found) else None


def spark_engine(engine: str, data, table: str | None):
    """The Spark engine's module when the data are Spark's, else None; or why not."""
    from controller.inputs import spark

    if engine not in ("pandas", "spark"):
        raise InputError(f"unknown engine {engine!r}", "pass --engine pandas or --engine spark")
    if (data is None) == (table is None):
        raise InputError(
            "no data, or both data and a table, given", "pass --data or --table, one of them"
        )
    if table is not None and engine != "spark":
        raise InputError(
            f"--table {table} names a Spark catalog table, which only the Spark engine reads",
            "add --engine spark, or pass a file with --data",
        )
    if engine == "spark" and isinstance(data, pd.DataFrame):
        raise InputError(
            "the Spark engine takes a Spark DataFrame, a parquet path or a table, not a "
            "pandas DataFrame",
            "use engine='pandas' for a pandas DataFrame",
        )
    return spark if engine == "spark" or spark.is_spark_frame(data) else None


def read_profile(run) -> BatchProfile:
    """The profile and sample a batch run (a found run) was logged with."""
    data = json.loads(tracking.read_text_artifact(run, PROFILE_PATH))
    return BatchProfile.from_dict(data, tracking.read_table_artifact(run, SAMPLE_PATH))


def log_labels(
    name: str,
    data: pd.DataFrame | str | Path | None = None,  # or a Spark DataFrame
    *,
    id_col: str,
    target: str,
    engine: str = "pandas",
    table: str | None = None,
) -> str:
    """Log labels that arrived after their batches; returns the run id.

    Each label is matched now to the latest logged batch holding its id, and kept under
    that batch (``labels_part``), so that a cycle reads the labels of its own batches only.
    Labels whose id no batch holds yet are kept apart and counted (tag
    ``driftctl.unmatched_rows``): log their batch, then these labels again. The Spark
    engine (``engine="spark"``, or ``data`` a Spark DataFrame) reads a parquet path or the
    catalog ``table`` and matches them in one join on the executors.
    """
    spark = spark_engine(engine, data, table)
    if spark is not None:
        return _log_spark_labels(spark, name, data, table, id_col, target)
    baseline, _ = tracking.load_baseline(tracking.resolve_version(name))
    frame = _read(data, baseline, id_col)
    check_names(frame)
    require_label_columns(frame.columns, id_col, target, "the labels file")
    labels = frame[[id_col, target]].dropna()
    _check_labels(labels[target], baseline, f"label column {target!r}")
    if labels.empty:
        raise InputError(
            "the labels file has no row with both an id and a label",
            "fill in the id and label columns",
        )
    if labels[id_col].duplicated().any():
        raise InputError(
            f"id column {id_col!r} repeats ids, e.g. "
            f"{shown(labels[id_col][labels[id_col].duplicated()], 3)}",
            "keep one label per id",
        )
    out = pd.DataFrame({ID: as_labels(labels[id_col]), LABEL: labels[target].to_numpy()})
    parts, unmatched = _match(name, out)

    def log_parts(run_id: str) -> None:
        for batch, part in parts.items():
            tracking.log_table(part, labels_part(batch))
        if len(unmatched):
            tracking.log_table(unmatched, LABELS_PATH)

    counts = {batch: len(part) for batch, part in parts.items()}
    return _log_labels(name, id_col, target, len(out), counts, log_parts)


def _log_spark_labels(spark, name, data, table, id_col, target) -> str:
    baseline, _ = tracking.load_baseline(tracking.resolve_version(name))
    batches = batch_runs(name)
    regression = baseline.task == "regression"
    with spark.labels(
        data, table, id_col=id_col, target=target, regression=regression, batches=batches
    ) as found:

        def log_parts(run_id: str) -> None:
            for batch, (folder, _) in found.parts.items():
                tracking.log_directory(run_id, folder, labels_part(batch))
            folder, left = found.unmatched
            if left:
                tracking.log_directory(run_id, folder, LABELS_PATH)

        counts = {batch: n for batch, (_, n) in found.parts.items()}
        return _log_labels(name, id_col, target, found.rows, counts, log_parts)


def _log_labels(name, id_col, target, rows: int, counts: dict[str, int], log_parts) -> str:
    """Log a labels run: its tags, and its parts (``log_parts(run_id)``, the engine's own)."""
    matched = sum(counts.values())
    tags = {
        tracking.KIND: "labels",
        tracking.MODEL: name,
        tracking.TAG + "rows": str(rows),
        tracking.TAG + "id_col": id_col,
        tracking.TAG + "target": target,
        MATCHED: str(matched),
        UNMATCHED: str(rows - matched),
        **{_MATCHED_IN + batch: str(n) for batch, n in counts.items()},
    }
    experiment = tracking.experiment_id(name)
    with tracking.atomic_run(
        experiment, "labels", tags, parent=_production(experiment, name)
    ) as run:
        log_parts(run.info.run_id)
    return run.info.run_id


def _production(experiment: str, name: str):
    """The run batch and label runs are grouped under in the UI, one per model: the runs
    list keeps cycles and challengers at its top level. Readers find batches and labels by
    their tags, nested or not."""
    return lambda: tracking.singleton_run(experiment, name, "production", "production data")


def _match(name: str, labels: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """``labels`` split by the batch holding their ids (the latest, where several do), and
    those no batch holds. Batches are read newest first, their id column only, until every
    label has found its batch."""
    batches = batch_runs(name)
    parts, left = {}, labels
    for run in reversed(batches):
        id_col = run.data.tags.get(tracking.TAG + "id_col")
        if left.empty:
            break
        if not id_col:
            continue
        ids = as_labels(tracking.read_table_artifact(run, BATCH_PATH, [id_col])[id_col])
        # pandas hashes: numpy's isin compares object arrays pairwise (95 s at 100,000 ids)
        hit = left[ID].isin(ids).to_numpy()
        if hit.any():
            parts[run.info.run_id] = left[hit].reset_index(drop=True)
            left = left[~hit]
    return parts, left.reset_index(drop=True)


def _read(data, baseline: Baseline, id_col: str | None) -> pd.DataFrame:
    """A frame as given, or read from a file (``_read_file``)."""
    if isinstance(data, pd.DataFrame):
        return data
    return _read_file(data, baseline.features, id_col)


def _read_file(path, features: dict, id_col: str | None) -> pd.DataFrame:
    """A file's rows, with categorical features and ids as text (so that a CSV's "02139"
    stays a zip code and does not become the number 2139)."""
    text = [n for n, p in features.items() if p.kind == "categorical"]
    return read_table(path, text_columns=[*text, *([id_col] if id_col else [])])


def _check_labels(labels: pd.Series, baseline: Baseline, what: str) -> None:
    if baseline.task == "regression" and not pd.api.types.is_numeric_dtype(labels):
        raise InputError(
            f"{what} is not numeric (values like {shown(labels.dropna(), 3)}), but "
            "the model is a regressor",
            "pass the numeric target values",
        )


def _timestamps(frame: pd.DataFrame, col: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(frame[col]):
        raise InputError(
            f"time-stamp column {col!r} holds numbers, whose unit driftctl cannot know",
            "write ISO 8601 strings, or convert epoch seconds with "
            "pd.to_datetime(values, unit='s', utc=True)",
        )
    try:
        times = pd.to_datetime(frame[col], utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"time-stamp column {col!r} cannot be read as dates: {str(exc)[:200]}",
            "use ISO 8601 strings (2026-01-31T12:00:00Z) or a datetime column",
        ) from exc
    if times.isna().any():
        raise InputError(
            f"time-stamp column {col!r} has missing values", "give every row a time stamp"
        )
    return times
