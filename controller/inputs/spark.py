"""The Spark engine: a batch, or a baseline's data, read, checked and profiled by Spark.

A batch logged with ``--engine spark`` gets the profile the pandas engine gives it (the
same counts in the baseline's bins, moments equal up to rounding) without its rows
reaching the driver. On the executors: the checks, the champion's predictions
(``mlflow.pyfunc.spark_udf``), one aggregation that counts every column into its bins
(missing values, moments and the time-stamp range with it), the keys of the bottom-k
sample (a hash of each row's content) and the write of the narrow columns a cycle reads.
To the driver: the aggregates (a row per column and bin) and the k rows of the sample.

The batch's full rows stay where they are: its run records their source
(``driftctl.rows_source``: a parquet path or ``table:NAME``) and a fingerprint of their
files (``driftctl.rows_fingerprint``), which ``read_source_rows`` checks when it reads them
back. pyspark is imported on first use, so the package works without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path

import pandas as pd

from controller import tracking
from controller._errors import InputError
from controller.inputs.source import (
    BATCH_PATH,
    ENGINE,
    FINGERPRINT,
    ID,
    LABEL,
    SOURCE,
    UNSCORED,
    pointer,
    unchanged,
)
from controller.inputs.tables import require_label_columns, require_schema
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.profiles.batch import (
    KEY,
    BatchProfile,
    Column,
    add_counts,
    baseline_key,
    bins,
    count_frames,
)
from controller.profiles.profile import FeatureProfile

TABLE = "table:"
STAGING = "DRIFTCTL_SPARK_STAGING"
BASELINE_ROWS = 100_000  # rows brought to the driver to build a baseline from


def session():
    """The active Spark session, else a new one (as ``spark-submit`` configured it, else
    local on every core)."""
    # pyspark 4 warns, at many of its calls, that it does not fully support pandas 3; the
    # engine's tests pass with it, and the warning would drown the command's output.
    warnings.filterwarnings(
        "ignore", "PySpark does not yet fully support pandas", FutureWarning, "pyspark"
    )
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise InputError(
            "the Spark engine needs pyspark, which is not installed",
            "pip install 'driftctl[spark]' (Spark also needs Java 17 or newer)",
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Local workers run this interpreter, which has the model's libraries (Spark's default
    # is the first python3 on the PATH). On a cluster, set PYSPARK_PYTHON.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("driftctl")
    spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")  # Spark's start-up warnings drown our output
    return spark


def is_spark_frame(data) -> bool:
    """Whether ``data`` is a Spark DataFrame (told without importing pyspark)."""
    return type(data).__module__.startswith("pyspark.") and hasattr(data, "sparkSession")


def read(data=None, table: str | None = None):
    """The Spark DataFrame of ``data`` (one already, or the path of a parquet file or
    directory) or of the catalog table ``table``, and where its rows come from: an absolute
    path, ``table:NAME``, or None for a DataFrame."""
    if is_spark_frame(data):
        return data, None
    if table is not None:
        source = TABLE + table
    elif data is not None:
        text = str(data)
        if "://" not in text:  # a local path; a URI (s3a://, hdfs://) goes to Spark as is
            path = Path(text).resolve()
            if not path.exists():
                raise InputError(
                    f"data path {text!r} does not exist",
                    "pass a parquet file or a directory of parquet files",
                )
            text = str(path)
        source = text
    else:
        raise InputError("no data given", "pass --data PATH or --table NAME")
    _parquet_only(source)  # before Spark starts, which takes seconds
    return _open(session(), source), source


def _parquet_only(source: str) -> None:
    if not source.startswith(TABLE) and source.lower().endswith((".csv", ".csv.gz")):
        raise InputError(
            f"the Spark engine reads parquet, not {source!r}",
            "convert the file to parquet, or log it with --engine pandas",
        )


def _open(spark, source: str):
    from pyspark.errors import PySparkException

    _parquet_only(source)
    try:
        if source.startswith(TABLE):
            return spark.table(source.removeprefix(TABLE))
        return spark.read.parquet(source)
    except PySparkException as exc:  # no such table or path, files that are not parquet
        what = f"table {source.removeprefix(TABLE)!r}" if source.startswith(TABLE) else source
        raise InputError(
            f"Spark cannot read {what}: {str(exc).splitlines()[0]}",
            "pass a parquet file or directory (--data), or a table of the Spark catalog (--table)",
        ) from exc


@dataclass(frozen=True)
class SparkBatch:
    """A checked and profiled batch, ready to log: its profile, the pointer to its rows
    (tags) and its narrow columns, written by Spark to ``rows``."""

    profile: BatchProfile
    tags: dict[str, str]
    rows: Path
    frame: object  # the Spark DataFrame read, for lineage
    source: str | None

    def holding(self, labels: pd.DataFrame, id_col: str) -> pd.DataFrame:
        """The ``labels`` (``__id__``, ``__label__``; ids as text) whose id this batch holds,
        found by a join on the executors (the labels are few: those logged early)."""
        spark = self.frame.sparkSession
        ids = self.frame.select(_id_text(self.frame, id_col).alias(ID)).distinct()
        found = spark.createDataFrame(labels[[ID]]).join(ids, ID).toArrow().to_pandas()
        return labels[labels[ID].isin(found[ID])]

    def log_rows(self, run_id: str, path: str, dataset: str) -> None:
        """Log the narrow columns as the parquet directory ``path``, and the lineage."""
        tracking.log_directory(run_id, self.rows, path)
        where = self.source or ""
        tracking.log_spark_dataset(
            run_id,
            self.frame,
            name=dataset,
            context="production",
            rows=self.profile.rows,
            path=None if where.startswith(TABLE) or not where else where,
            table=where.removeprefix(TABLE) if where.startswith(TABLE) else None,
            digest=self.tags[FINGERPRINT].split()[-1][:8] if FINGERPRINT in self.tags else None,
        )


@contextlib.contextmanager
def batch(
    data,
    baseline: Baseline,
    model_uri: str,
    *,
    table: str | None = None,
    id_col: str | None = None,
    timestamp_col: str | None = None,
    prediction_col: str | None = None,
    target: str | None = None,
    sample_size: int,
) -> Iterator[SparkBatch]:
    """Read, check and profile a batch with Spark (see the module's docstring), as
    ``log_batch`` does with pandas: the same checks, each one ``InputError``. The narrow
    columns live in a temporary folder until the block ends."""
    frame, source = read(data, table)
    spark = frame.sparkSession
    with _utc(spark), _model_errors(), _staging() as tmp:
        names = frame.columns
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise InputError(f"duplicate column names {dupes}", "give every column a distinct name")
        if (
            prediction_col is None
            and "prediction" in names
            and "prediction" not in baseline.features
        ):
            prediction_col = "prediction"
        declared = [c for c in (id_col, timestamp_col, prediction_col, target) if c]
        for col in declared:
            if col not in names:
                raise InputError(
                    f"column {col!r} named on the command line is not in the batch "
                    f"(columns: {names})",
                    "check the spelling of --id-col, --timestamp-col, --prediction-col, --target",
                )
        _require_schema(frame, baseline.features, declared)
        _require_other_types(frame, baseline, timestamp_col, target)
        if id_col:
            _require_unique(frame, id_col)
        # Taken before the rows are read: a source that changes meanwhile is refused later.
        tags = {ENGINE: "spark"}  # the rows are not copied: read back from their source
        if source is not None:
            tags = pointer(source, "spark", fingerprint(spark, source))

        prepared, scored = _prepared(
            frame, baseline, model_uri, id_col, timestamp_col, prediction_col, target
        )
        if scored:  # the model's predictions are computed once for the three jobs below
            prepared = prepared.persist()
            try:  # scored (and cached) here, so that a failure is the model's alone
                with _model_errors():
                    prepared.where(prepared[PREDICTION].isNull()).count()
            except InputError as exc:  # broken values it cannot score: logged without
                prepared.unpersist()
                prepared, scored = _prepared(
                    frame, baseline, None, id_col, timestamp_col, None, target
                )
                tags[UNSCORED] = exc.problem[:1000]
        try:
            counted = {n: p for n, p in bins(baseline).items() if n in prepared.columns}
            rows, columns, _, times = _count(prepared, counted, timestamp_col)
            if not rows:  # broken values are logged, and triaged by the cycle
                raise InputError("this batch holds no rows", "pass data with at least one row")
            if prediction_col and columns[PREDICTION].missing:
                raise InputError(
                    f"prediction column {prediction_col!r} has {columns[PREDICTION].missing} "
                    "missing value(s)",
                    "log the prediction served for every row, or leave the column out to let "
                    "the champion predict",
                )
            if timestamp_col:
                _require_times(timestamp_col, times)
            profile = BatchProfile(
                baseline=baseline_key(baseline),
                rows=rows,
                columns=columns,
                sample_size=sample_size,
                sample=_bottom_k(prepared, sample_size, _seed(columns)),
                start=times.get("start"),
                end=times.get("end"),
            )
            narrow = [c for c in (id_col, timestamp_col, target, PREDICTION, SCORE) if c]
            written = Path(tmp) / "batch.parquet"
            prepared.select(*[c for c in narrow if c in prepared.columns]).write.parquet(
                written.as_uri()
            )
        finally:
            if scored:
                prepared.unpersist()
        for marker in [*written.glob("_*"), *written.glob(".*")]:  # _SUCCESS, checksums
            marker.unlink()
        yield SparkBatch(profile, tags, written, frame, source)


@dataclass(frozen=True)
class SparkLabels:
    """Late labels matched by Spark to their batches: per batch run, the folder holding
    its labels (``__id__``, ``__label__``) and their number; the unmatched likewise."""

    parts: dict[str, tuple[Path, int]]
    unmatched: tuple[Path, int]
    rows: int


@contextlib.contextmanager
def labels(
    data, table: str | None, *, id_col: str, target: str, regression: bool, batches
) -> Iterator[SparkLabels]:
    """Read and check late labels with Spark and match each to the latest of ``batches``
    (batch runs, oldest first) whose rows hold its id, as ``log_labels`` does with pandas:
    one join on the executors, against the id columns the batches logged. The parts live in
    a temporary folder until the block ends."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    frame, _ = read(data, table)
    with _utc(frame.sparkSession), _staging() as tmp:
        require_label_columns(frame.columns, id_col, target, "the labels table")
        if regression and _kind(frame.schema[target].dataType) != "numeric":
            raise InputError(
                f"label column {target!r} is not numeric ({frame.schema[target].dataType}), "
                "but the model is a regressor",
                "pass the numeric target values",
            )
        _require_unique(frame.select(id_col, target).dropna(), id_col, "keep one label per id")
        cached = []  # released however the block ends, as a long-lived session lives on
        try:
            given = frame.select(
                _id_text(frame, id_col).alias(ID), F.col(target).alias(LABEL)
            ).dropna().persist()
            cached.append(given)
            rows = given.count()
            if not rows:
                raise InputError(
                    "the labels have no row with both an id and a label",
                    "fill in the id and label columns",
                )
            ids = []
            for order, run in enumerate(batches):
                batch_id = run.data.tags.get(tracking.TAG + "id_col")
                if batch_id:
                    path = Path(tracking.artifact_path(run, BATCH_PATH, tmp))
                    part = frame.sparkSession.read.parquet(path.as_uri())
                    ids.append(
                        part.select(
                            _id_text(part, batch_id).alias(ID),
                            F.lit(order).alias("__order__"),
                            F.lit(run.info.run_id).alias("__batch__"),
                        )
                    )
            matched = given.limit(0).withColumn("__batch__", F.lit(""))
            if ids:
                latest = Window.partitionBy(ID).orderBy(F.col("__order__").desc())
                held = (
                    reduce(lambda a, b: a.unionByName(b), ids)
                    .withColumn("__rank__", F.row_number().over(latest))
                    .where("__rank__ = 1")
                    .drop("__rank__", "__order__")
                )
                matched = given.join(held, ID)
            matched = matched.persist()
            cached.append(matched)
            out = Path(tmp) / "labels"
            matched.write.partitionBy("__batch__").parquet((out / "matched").as_uri())
            counted = matched.groupBy("__batch__").count().collect()
            counts = {r["__batch__"]: r["count"] for r in counted}
            parts = {b: (out / "matched" / f"__batch__={b}", n) for b, n in counts.items()}
            left = given.join(matched.select(ID), ID, "left_anti")
            left.write.parquet((out / "unmatched").as_uri())
            for folder in [out / "matched", out / "unmatched", *(p for p, _ in parts.values())]:
                for marker in [*folder.glob("_*"), *folder.glob(".*")]:
                    if marker.is_file():
                        marker.unlink()
        finally:
            for frame_cached in cached:
                frame_cached.unpersist()
        yield SparkLabels(parts, (out / "unmatched", rows - sum(counts.values())), rows)


def _staging():
    """A temporary folder the executors write to and the driver logs from: under
    ``$DRIFTCTL_SPARK_STAGING`` (a folder every node mounts at the same path, such as
    ``/dbfs/tmp/driftctl`` on Databricks), else the driver's temporary folder, which only a
    local Spark shares with its executors."""
    return tempfile.TemporaryDirectory(prefix="driftctl-", dir=os.environ.get(STAGING))


def _id_text(frame, name: str):
    """A column of ids as text, as ``as_labels`` writes them for the pandas engine (so ids
    join across engines and file formats): text as it is ("00007" stays so), integers as
    digits, and floats whole values as integers ("7.0" is "7"; unlike ``as_labels``, which
    decides for a whole column, value by value)."""
    from pyspark.sql import functions as F

    col, kind = F.col(name), frame.schema[name].dataType.typeName()
    if kind in ("float", "double") or kind.startswith("decimal"):
        x = col.cast("double")
        whole = (x == F.floor(x)) & (F.abs(x) < 2.0**63)
        return F.when(whole, x.cast("long").cast("string")).otherwise(col.cast("string"))
    return col.cast("string")


def _prepared(frame, baseline, model_uri, id_col, timestamp_col, prediction_col, target):
    """The batch's columns as the pandas engine logs them (features, id, time stamp, target,
    ``__prediction__`` and, from the champion of a binary classifier, ``__score__``), and
    whether the champion scores them (not without ``model_uri``: no predictions)."""
    from pyspark.sql import functions as F

    features = list(baseline.features)
    classifier = baseline.task == "classification"
    kept = [frame[c] for c in [*features, *(c for c in (id_col, timestamp_col, target) if c)]]
    if model_uri is None:  # the champion could not score these rows
        return frame.select(*kept), False
    if prediction_col:
        served = frame[prediction_col]
        dtype = frame.schema[prediction_col].dataType
        pred = _labels(served, dtype) if classifier else served.cast("double")
        return frame.select(*kept, pred.alias(PREDICTION)), False
    rows = F.struct(*[frame[c] for c in features])
    udf = tracking.spark_udf(frame.sparkSession, model_uri, "string" if classifier else "double")
    pred = udf(rows)
    if classifier:  # as_labels: a whole float is its int ("1.0" is class "1")
        pred = F.regexp_replace(pred, r"^(-?\d+)\.0$", "$1")
    out = [pred.alias(PREDICTION)]
    if baseline.positive_class is not None:
        # The baseline recorded a positive class: the champion is a binary classifier with
        # predict_proba, whose second column is that class (as controller.inputs.model).
        proba = tracking.spark_udf(
            frame.sparkSession, model_uri, "array<double>", predict_fn="predict_proba"
        )
        out.append(proba(rows)[1].alias(SCORE))
    return frame.select(*kept, *out), True


def _labels(col, dtype):
    """Class labels as text, as ``as_labels`` writes them."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(dtype, T.BooleanType):
        return F.when(col, "True").when(~col, "False")
    if isinstance(dtype, T.FractionalType):
        # Within 2**53, where doubles hold whole numbers exactly (and a long casts safely).
        whole = (col == F.floor(col)) & (F.abs(col) < 2.0**53)
        return F.when(whole, col.cast("long").cast("string")).otherwise(col.cast("string"))
    return col.cast("string")


def _count(frame, columns: dict[str, FeatureProfile], timestamp_col: str | None):
    """Every column's counts in its bins, missing values and moments, infinite values, and
    the time stamps' range and unreadable ones, aggregated on the executors.

    Each partition counts its rows, in Arrow batches, with the pandas engine's own code
    (``controller.profiles.batch``), so the counts are the pandas engine's exactly; the
    driver receives one partial profile per partition and adds them up (moments by Chan's
    formula). Spark's own grouped aggregation of a (column, bin) pair per value was twenty
    times slower on two cores.
    """
    from pyspark.sql import functions as F

    def partials(batches):  # on the executors: pickled with what it names, no more
        yield pd.DataFrame({"part": [count_frames(batches, columns)]})

    spark = frame.sparkSession
    before = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    # Fewer, larger batches: the counting costs per call, not per row.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
    try:
        found = frame.select(*columns).mapInPandas(partials, "part string").collect()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", before)
    rows, out, infinite = add_counts([r.part for r in found], columns)
    times = {}
    if timestamp_col:
        raw = frame[timestamp_col]
        dtype = frame.schema[timestamp_col].dataType.simpleString()
        parsed = F.try_to_timestamp(raw) if dtype == "string" else raw.cast("timestamp")
        micros = F.unix_micros(parsed)
        got = frame.agg(
            F.count_if(raw.isNull()).alias("missing"),
            F.count_if(raw.isNotNull() & parsed.isNull()).alias("unreadable"),
            F.min(micros).alias("start"),
            F.max(micros).alias("end"),
        ).first()
        times = {"missing": got.missing, "unreadable": got.unreadable}
        if got.start is not None:
            times["start"] = pd.Timestamp(int(got.start), unit="us", tz="UTC")
            times["end"] = pd.Timestamp(int(got.end), unit="us", tz="UTC")
    return rows, out, infinite, times


def _bottom_k(frame, k: int, seed: int) -> pd.DataFrame:
    """The rows with the ``k`` smallest keys, ordered by key (column ``__key__``).

    A row's key is a 64-bit hash of its content and ``seed``, its top 53 bits scaled to
    [0, 1): a multiple of 2⁻⁵³, as ``BatchProfile``'s keys. Spark takes the k smallest per
    partition and merges them on an executor; the Arrow collection brings only those k
    rows to the driver.
    """
    sample = smallest_keys(frame, k, seed).toArrow().to_pandas()
    return sample.sort_values(KEY, kind="stable").reset_index(drop=True)


def smallest_keys(frame, k: int, seed: int):
    """The Spark DataFrame of ``frame``'s rows with the ``k`` smallest keys (``_bottom_k``)."""
    from pyspark.sql import functions as F

    hashed = F.xxhash64(F.lit(seed), *[frame[c] for c in frame.columns])
    key = F.shiftrightunsigned(hashed, 11).cast("double") * 2.0**-53
    return frame.withColumn(KEY, key).orderBy(KEY).limit(k)


def _seed(columns: dict[str, Column]) -> int:
    """A seed from the batch's counts and moments: logging the same rows again keeps the
    same sample, and batches of different rows draw independent keys."""
    spec = {n: (c.counts, c.missing, c.moments and c.moments.__dict__) for n, c in columns.items()}
    return int(hashlib.sha256(json.dumps(spec, default=str).encode()).hexdigest()[:15], 16)


def fingerprint(spark, source: str) -> str:
    """A fingerprint of the files behind ``source``: each one's path (relative to their
    common folder), size and number of rows, read from the parquet footers by Spark."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    frame = _open(spark, source)
    try:
        files = (
            frame.select(
                F.col("_metadata.file_path").alias("f"), F.col("_metadata.file_size").alias("s")
            )
            .groupBy("f", "s")
            .count()
            .collect()
        )
    except AnalysisException as exc:  # a source not made of files (JDBC, say)
        raise InputError(
            f"cannot fingerprint the rows of {source}: Spark does not read them from files",
            "write the batch as a parquet table or directory",
        ) from exc
    root = posixpath.commonpath([posixpath.dirname(f.f) for f in files]) if files else ""
    listing = sorted((posixpath.relpath(f.f, root), f.s, f["count"]) for f in files)
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:32]
    return f"{len(listing)} files, {sum(n for *_, n in listing)} rows, sha256 {digest}"


def read_source_rows(tags: dict, columns: list[str]) -> pd.DataFrame:
    """The full rows of a batch logged by the Spark engine, read back from their source
    through Spark (``columns``: those of them the source has; rows in any order).

    The source must hold the rows it held when the batch was logged: a changed fingerprint
    is an ``InputError``.
    """
    source = tags.get(SOURCE)
    if not source:
        raise InputError(
            "this batch was logged from a Spark DataFrame without a path or table, so its "
            "rows cannot be read back",
            "log batches with --data PATH or --table NAME to retrain from them",
        )
    spark = session()
    unchanged(source, tags.get(FINGERPRINT), fingerprint(spark, source))
    frame = _open(spark, source)
    present = [c for c in dict.fromkeys(columns) if c in frame.columns]
    return frame.select(*present).toArrow().to_pandas()


def baseline_rows(frame, rows: int = BASELINE_ROWS) -> pd.DataFrame:
    """A uniform sample of up to ``rows`` rows of ``frame`` (bottom-k, as a batch's
    sample), brought to the driver to build a baseline from."""
    with _utc(frame.sparkSession):
        sample = _bottom_k(frame, rows, seed=0)
    if sample.empty:
        raise InputError("the baseline data holds no rows", "pass data with at least one row")
    return sample.drop(columns=KEY)


def recount(baseline: Baseline, frame) -> Baseline:
    """``baseline`` with its features counted over every row of ``frame`` in the bins
    learned from the sample: counts, missing values and moments of the full data."""
    rows, columns, infinite, _ = _count(frame, baseline.features, None)
    _require_values(rows, columns, infinite, list(baseline.features), "the baseline data")
    features = {n: columns[n].observed(p) for n, p in baseline.features.items()}
    return replace(baseline, features=features, n_rows=rows)


def _require_schema(frame, profiles: dict[str, FeatureProfile], declared: list[str]) -> None:
    """The pandas engine's schema check (missing and extra columns, then types), on the
    Spark types."""
    require_schema(pd.DataFrame(columns=frame.columns), profiles, declared)
    for name, profile in profiles.items():
        dtype = frame.schema[name].dataType
        kind = _kind(dtype)
        if kind not in (profile.kind, None):
            raise InputError(
                f"column {name!r} is {profile.kind} in the baseline but {kind} here "
                f"(Spark type {dtype.simpleString()})",
                f"cast the column back to its baseline type ({profile.dtype})",
            )


def _kind(dtype) -> str | None:
    """The feature type of a Spark type; None for a column of nulls only."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.BooleanType):
        return "boolean"
    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, T.StringType | T.CharType | T.VarcharType):
        return "categorical"
    if isinstance(dtype, T.NullType):
        return None
    return f"unsupported ({dtype.simpleString()})"


def _require_other_types(frame, baseline: Baseline, timestamp_col, target) -> None:
    from pyspark.sql import types as T

    stamp = frame.schema[timestamp_col].dataType if timestamp_col else None
    if isinstance(stamp, T.NumericType):
        raise InputError(
            f"time-stamp column {timestamp_col!r} holds numbers, whose unit driftctl cannot know",
            "write ISO 8601 strings, or convert epoch seconds with F.timestamp_seconds(column)",
        )
    if stamp is not None and not isinstance(
        stamp, T.StringType | T.TimestampType | T.TimestampNTZType | T.DateType
    ):
        raise InputError(
            f"time-stamp column {timestamp_col!r} cannot be read as dates (Spark type "
            f"{stamp.simpleString()})",
            "use ISO 8601 strings (2026-01-31T12:00:00Z) or a timestamp column",
        )
    if target and baseline.task == "regression":
        dtype = frame.schema[target].dataType
        if not isinstance(dtype, T.NumericType):
            raise InputError(
                f"target column {target!r} is not numeric (Spark type {dtype.simpleString()}), "
                "but the model is a regressor",
                "pass the numeric target values",
            )


def _require_unique(
    frame,
    id_col: str,
    fix: str = "give every row a unique id, so that late labels join to exactly one row",
) -> None:
    repeated = frame.groupBy(id_col).count().where("count > 1").limit(3).collect()
    if repeated:
        raise InputError(
            f"id column {id_col!r} has duplicate values (e.g. {[r[0] for r in repeated]})", fix
        )


def _require_values(rows, columns, infinite, features, where: str) -> None:
    """The checks of ``require_values``, on the counts: rows, no feature entirely missing,
    no infinite value."""
    if not rows:
        raise InputError(f"{where} holds no rows", "pass data with at least one row")
    for name in features:
        if columns[name].missing == rows:
            raise InputError(
                f"column {name!r} is entirely missing in {where} ({rows} rows)",
                "fix the upstream data, or drop the column if the model does not use it",
            )
        if infinite[name]:
            raise InputError(
                f"column {name!r} holds {infinite[name]} infinite value(s) in {where}",
                "replace inf with NaN (counted as missing) or with a finite value",
            )


def _require_times(col: str, times: dict) -> None:
    if times["unreadable"]:
        raise InputError(
            f"time-stamp column {col!r} cannot be read as dates: {times['unreadable']} "
            "value(s) are not time stamps",
            "use ISO 8601 strings (2026-01-31T12:00:00Z) or a timestamp column",
        )
    if times["missing"]:
        raise InputError(
            f"time-stamp column {col!r} has missing values", "give every row a time stamp"
        )


@contextlib.contextmanager
def _utc(spark) -> Iterator[None]:
    """Time stamps without a zone read as UTC, as the pandas engine reads them: the
    session's time zone, set for the block and restored after it."""
    key = "spark.sql.session.timeZone"
    before = spark.conf.get(key)
    spark.conf.set(key, "UTC")
    try:
        yield
    finally:
        spark.conf.set(key, before)


@contextlib.contextmanager
def _model_errors() -> Iterator[None]:
    """The champion's failure on the executors as the pandas engine reports it (the batch
    is scored, and cached, before any other Python code of ours runs there)."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as exc:
        raise InputError(
            f"the model failed to predict on this data: {str(exc).strip().splitlines()[-1]}",
            "check the data against the model's training columns and categories, or "
            "pass the model's predictions in the data with --prediction-col",
        ) from exc
