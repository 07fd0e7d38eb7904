"""Production data: batches of inference inputs and predictions, and late labels.

A batch is an MLflow run in the model's controller experiment (``driftctl-<model>``),
tagged ``driftctl.kind = batch``, holding ``driftctl/batch.parquet``: the features under
their own names, the id and time-stamp columns if named, an inline target if given, and
the predictions in ``__prediction__`` (and ``__score__``, the positive-class probability of
a binary classifier). Labels logged later are runs of kind ``labels`` holding
``driftctl/labels.parquet`` with the columns ``__id__`` and ``__label__``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from controller import tracking
from controller._errors import InputError, NotFoundError
from controller.inputs.model import predict
from controller.inputs.tables import check_names, read_table, require_schema, require_values
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.statistics.performance import as_labels

BATCH_PATH = "driftctl/batch.parquet"
LABELS_PATH = "driftctl/labels.parquet"
ID, LABEL, VERSION = "__id__", "__label__", "__version__"
START, END = tracking.TAG + "start", tracking.TAG + "end"


def log_batch(
    name: str,
    data: pd.DataFrame | str | Path,
    *,
    id_col: str | None = None,
    timestamp_col: str | None = None,
    prediction_col: str | None = None,
    target: str | None = None,
    alias: str = "champion",
) -> str:
    """Validate a batch against the champion's baseline and log it; returns the run id.

    ``data`` is a frame or the path of a parquet or CSV file. Predictions come from
    ``prediction_col``, else from a column named ``prediction`` that is not a feature, else
    from the champion.
    """
    mv = tracking.resolve_version(name, alias=alias)
    baseline, _ = tracking.load_baseline(mv)
    frame = _read(data, baseline, id_col)
    check_names(frame)
    if prediction_col is None and "prediction" in frame and "prediction" not in baseline.features:
        prediction_col = "prediction"
    declared = [c for c in (id_col, timestamp_col, prediction_col, target) if c]
    for col in declared:
        if col not in frame.columns:
            raise InputError(
                f"column {col!r} named on the command line is not in the batch "
                f"(columns: {list(frame.columns)})",
                "check the spelling of --id-col, --timestamp-col, --prediction-col, --target",
            )
    features = list(baseline.features)
    require_schema(frame, baseline.features, declared)
    require_values(frame, features, reference=False)
    if id_col and frame[id_col].duplicated().any():
        raise InputError(
            f"id column {id_col!r} has duplicate values "
            f"(e.g. {frame[id_col][frame[id_col].duplicated()].iloc[:3].tolist()})",
            "give every row a unique id, so that late labels join to exactly one row",
        )
    times = _timestamps(frame, timestamp_col) if timestamp_col else None
    if target:
        _check_labels(frame[target], baseline, f"target column {target!r}")

    out = frame[features + [c for c in (id_col, timestamp_col, target) if c]].copy()
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
        preds = predict(tracking.load_model(mv), frame[features])
        out[PREDICTION] = preds.values
        if preds.score is not None:
            out[SCORE] = preds.score
    if baseline.task == "classification":
        out[PREDICTION] = as_labels(out[PREDICTION].to_numpy())

    now = pd.Timestamp.now(tz="UTC")
    start = times.min() if times is not None else now
    end = times.max() if times is not None else now
    tags = {
        tracking.KIND: "batch",
        tracking.MODEL: name,
        tracking.VERSION: mv.version,
        START: start.isoformat(),
        END: end.isoformat(),
        tracking.TAG + "rows": str(len(out)),
    }
    for key, col in (("id_col", id_col), ("timestamp_col", timestamp_col), ("target", target)):
        if col:
            tags[tracking.TAG + key] = col
    experiment = tracking.experiment_id(name)
    with tracking.atomic_run(experiment, f"batch {end:%Y-%m-%d %H:%M}", tags) as run:
        tracking.log_table(out, BATCH_PATH)
        tracking.log_dataset(
            run.info.run_id,
            out,
            name=f"{name}-batch",
            source=None if isinstance(data, pd.DataFrame) else str(data),
            context="production",
        )
    return run.info.run_id


def log_labels(name: str, data: pd.DataFrame | str | Path, *, id_col: str, target: str) -> str:
    """Log labels that arrived after their batches; they join batches by id."""
    baseline, _ = tracking.load_baseline(tracking.resolve_version(name))
    frame = _read(data, baseline, id_col)
    check_names(frame)
    for col, flag in ((id_col, "--id-col"), (target, "--target")):
        if col not in frame.columns:
            raise InputError(
                f"column {col!r} ({flag}) is not in the labels file "
                f"(columns: {list(frame.columns)})",
                f"pass the name of the {'id' if flag == '--id-col' else 'label'} column "
                f"with {flag}",
            )
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
            f"{labels[id_col][labels[id_col].duplicated()].iloc[:3].tolist()}",
            "keep one label per id",
        )
    out = pd.DataFrame({ID: as_labels(labels[id_col]), LABEL: labels[target].to_numpy()})
    tags = {
        tracking.KIND: "labels",
        tracking.MODEL: name,
        tracking.TAG + "rows": str(len(out)),
        tracking.TAG + "id_col": id_col,
        tracking.TAG + "target": target,
    }
    with tracking.atomic_run(tracking.experiment_id(name), "labels", tags) as run:
        tracking.log_table(out, LABELS_PATH)
    return run.info.run_id


def _read(data, baseline: Baseline, id_col: str | None) -> pd.DataFrame:
    """A frame as given, or read from a file, with categorical features and ids as text
    (so that a CSV's "02139" stays a zip code and does not become the number 2139)."""
    if isinstance(data, pd.DataFrame):
        return data
    text = [n for n, p in baseline.features.items() if p.kind == "categorical"]
    return read_table(data, text_columns=[*text, *([id_col] if id_col else [])])


def _check_labels(labels: pd.Series, baseline: Baseline, what: str) -> None:
    if baseline.task == "regression" and not pd.api.types.is_numeric_dtype(labels):
        raise InputError(
            f"{what} is not numeric (values like {labels.dropna().iloc[:3].tolist()}), but "
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
            f"time-stamp column {col!r} cannot be read as dates: {exc}",
            "use ISO 8601 strings (2026-01-31T12:00:00Z) or a datetime column",
        ) from exc
    if times.isna().any():
        raise InputError(
            f"time-stamp column {col!r} has missing values", "give every row a time stamp"
        )
    return times


@dataclass(frozen=True)
class Window:
    """The production rows of a monitoring window, with labels joined where known."""

    frame: pd.DataFrame
    run_ids: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    labels: pd.Series | None  # aligned with frame; NaN where unknown
    # Every batch was logged with a time-stamp column: start and end are event times, else
    # (partly) the times the batches were logged.
    event_times: bool = True


def load_window(
    name: str,
    baseline: Baseline,
    *,
    last: int | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Window:
    """Batches of the window: the ``last`` N by event time, or those overlapping
    [since, until). The column ``__version__`` says which model version scored each row."""
    runs = select_runs(name, last=last, since=since, until=until)
    lo = _parse_time(since, "--since") if since is not None else None
    hi = _parse_time(until, "--until") if until is not None else None
    frames = []
    for run in runs:
        part = tracking.read_table_artifact(run, BATCH_PATH)
        ts_col = run.data.tags.get(tracking.TAG + "timestamp_col")
        if ts_col and (lo is not None or hi is not None):
            t = pd.to_datetime(part[ts_col], utc=True)
            part = part[
                ((t >= lo) if lo is not None else True) & ((t < hi) if hi is not None else True)
            ]
        id_col = run.data.tags.get(tracking.TAG + "id_col")
        if id_col:
            part = part.assign(**{ID: part[id_col]})
        target = run.data.tags.get(tracking.TAG + "target")
        if target and target in part.columns:
            part = part.assign(**{LABEL: part[target]})
        frames.append(part.assign(**{VERSION: run.data.tags[tracking.VERSION]}))
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise NotFoundError(
            f"the batches of model {name!r} hold no rows between {since} and {until}",
            "widen the window with --since / --until, or use --last N",
        )
    labels = _join_labels(name, frame)
    starts = [pd.Timestamp(r.data.tags[START]) for r in runs]
    ends = [pd.Timestamp(r.data.tags[END]) for r in runs]
    return Window(
        frame=frame,
        run_ids=tuple(r.info.run_id for r in runs),
        start=lo if lo is not None else min(starts),
        end=hi if hi is not None else max(ends),
        labels=labels,
        event_times=all(tracking.TAG + "timestamp_col" in r.data.tags for r in runs),
    )


def select_runs(
    name: str, *, last: int | None = None, since: str | None = None, until: str | None = None
) -> list:
    """The batch runs of a window (see ``load_window``), oldest first."""
    runs = tracking.finished_runs(name, "batch")
    lo = _parse_time(since, "--since") if since is not None else None
    hi = _parse_time(until, "--until") if until is not None else None
    runs.sort(key=lambda r: r.data.tags[END])
    if lo is not None or hi is not None:
        runs = [
            r
            for r in runs
            if (lo is None or pd.Timestamp(r.data.tags[END]) >= lo)
            and (hi is None or pd.Timestamp(r.data.tags[START]) < hi)
        ]
    else:
        runs = runs[-(last or 1) :]
    if not runs:
        if lo is None and hi is None:
            raise NotFoundError(
                f"no production batches for model {name!r} at all",
                f"log some with: driftctl log-batch --model {name} --data FILE",
            )
        everything = tracking.finished_runs(name, "batch")
        raise NotFoundError(
            f"no production batches for model {name!r} between {since or 'the start'} and "
            f"{until or 'now'}",
            "widen the window; the batches logged cover "
            + (
                f"{min(r.data.tags[START] for r in everything)} to "
                f"{max(r.data.tags[END] for r in everything)}"
                if everything
                else "nothing yet"
            ),
        )
    return runs


def window_key(name: str, version: str, batch_runs, policy) -> str:
    """What a cycle's findings depend on: the version, the batches, the labels logged so
    far and the policy. Equal keys, equal findings."""
    labels = [r.info.run_id for r in tracking.finished_runs(name, "labels")]
    text = repr((str(version), list(batch_runs), labels, policy))
    return hashlib.sha256(text.encode()).hexdigest()


def _join_labels(name: str, frame: pd.DataFrame) -> pd.Series | None:
    inline = frame[LABEL] if LABEL in frame.columns else None
    if ID not in frame.columns:
        return inline
    late = [
        tracking.read_table_artifact(r, LABELS_PATH)
        for r in tracking.finished_runs(name, "labels")
    ]
    if not late:
        return inline
    table = pd.concat(late, ignore_index=True).drop_duplicates(ID, keep="last")
    # Ids compare as text, with whole floats as ints: a CSV column of ids with a gap in it
    # is read as floats (1.0), its batch as ints (1).
    joined = pd.Series(as_labels(frame[ID]), index=frame.index).map(
        dict(zip(as_labels(table[ID]), table[LABEL], strict=True))
    )
    if inline is not None:
        joined = inline.where(inline.notna(), joined)
    return None if joined.isna().all() else joined


def _parse_time(text: str, flag: str) -> pd.Timestamp:
    if not text.strip():
        raise InputError(f"{flag} is empty", f"give {flag} a date, e.g. {flag} 2026-01-31")
    try:
        return (
            pd.Timestamp(text).tz_localize("UTC")
            if pd.Timestamp(text).tzinfo is None
            else pd.Timestamp(text).tz_convert("UTC")
        )
    except ValueError as exc:
        raise InputError(
            f"{flag} {text!r} is not a date or time",
            f"write it as ISO 8601, e.g. {flag} 2026-01-31 or 2026-01-31T12:00Z",
        ) from exc


def labelled_rows(batch_runs, label_runs) -> int:
    """Labelled production rows logged so far: late labels, and batches logged with their
    target."""
    inline = [r for r in batch_runs if tracking.TAG + "target" in r.data.tags]
    return sum(int(r.data.tags.get(tracking.TAG + "rows", 0)) for r in [*label_runs, *inline])
