"""The production window a cycle monitors and a retrain learns from.

A window is some batch runs (the ``last`` N, or those overlapping a time range), with late
labels joined by id. A retrain reads their rows (``load_window``): each row keeps the batch
it came from and, when that batch was logged with a time-stamp column, its event time, by
which a retrain orders its training rows. A cycle reads their merged profiles and samples
and the narrow columns of their rows (``load_profiled_window``), and the full rows only of
the batches whose profile cannot stand for them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from controller import tracking
from controller._errors import InputError, NotFoundError
from controller.inputs.batches import (
    BATCH_PATH,
    EARLY,
    END,
    ID,
    LABEL,
    LABELS_PATH,
    MATCHED,
    PROFILE_PATH,
    START,
    UNSCORED,
    batch_runs,
    labels_part,
    matched_batches,
    read_profile,
    read_rows,
)
from controller.inputs.source import BATCH
from controller.loop.assess import Observed
from controller.policy import Policy
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.profiles.batch import KEY, BatchProfile, baseline_key, bins, merge
from controller.statistics.performance import as_labels

VERSION = "__version__"
TIMESTAMP_COL = tracking.TAG + "timestamp_col"


@dataclass(frozen=True)
class Logged:
    """A model's batch and label runs as logged so far: their tags, found in one search
    each. A cycle finds them once; the files it reads are those of its window's batches
    and of the labels matched to them, never all of history's."""

    batches: tuple  # oldest first, by the end of their rows' time range
    labels: tuple  # oldest first, by when they were logged

    @classmethod
    def find(cls, name: str) -> Logged:
        return cls(tuple(batch_runs(name)), tuple(tracking.finished_runs(name, "labels")))

    @property
    def labelled_rows(self) -> int:
        """Labelled production rows logged so far: late labels matched to a batch (all of
        an older label run's), labels logged before their batch and found by it, and
        batches logged with their target."""
        inline = [r for r in self.batches if tracking.TAG + "target" in r.data.tags]
        late = sum(
            int(r.data.tags.get(MATCHED, r.data.tags.get(tracking.TAG + "rows", 0)))
            for r in self.labels
        )
        early = sum(int(r.data.tags.get(EARLY, 0)) for r in self.batches)
        return late + early + sum(int(r.data.tags.get(tracking.TAG + "rows", 0)) for r in inline)

    def labels_for(self, run_ids) -> pd.DataFrame | None:
        """The late labels (``__id__``, ``__label__``, ``__batch__``) matched to the batches
        ``run_ids``, the latest label of an id in a batch winning; label runs logged before
        labels were matched to batches are read whole (no batch: they join by id alone)."""
        wanted = set(run_ids)
        # Labels logged before their batch, kept by it, come first: the later win.
        parts = [
            tracking.read_table_artifact(r, labels_part(r.info.run_id)).assign(
                **{BATCH: r.info.run_id}
            )
            for r in self.batches
            if r.info.run_id in wanted and EARLY in r.data.tags
        ]
        for run in self.labels:
            tags = run.data.tags
            if MATCHED not in tags:
                parts.append(tracking.read_table_artifact(run, LABELS_PATH))
                continue
            parts += [
                tracking.read_table_artifact(run, labels_part(batch)).assign(**{BATCH: batch})
                for batch in matched_batches(tags)
                if batch in wanted
            ]
        if not parts:
            return None
        table = pd.concat(parts, ignore_index=True)
        key = [BATCH, ID] if BATCH in table.columns else [ID]
        return table.drop_duplicates(key, keep="last")


@dataclass(frozen=True)
class Window:
    """The production rows of a monitoring window, with labels joined where known."""

    frame: pd.DataFrame
    run_ids: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    labels: pd.Series | None  # aligned with frame; NaN where unknown
    row_batch: pd.Series  # aligned with frame: the batch run of each row (categories: run_ids)
    time_columns: tuple[str | None, ...]  # aligned with run_ids: each batch's time-stamp column
    # Every batch was logged with a time-stamp column: start and end are event times, else
    # (partly) the times the batches were logged.
    event_times: bool = True

    @cached_property
    def row_time(self) -> pd.Series:
        """Aligned with frame: each row's event time (UTC), NaT where its batch was logged
        without a time-stamp column."""
        # Parsed when first asked for: a monitor needs none, and a million time stamps
        # written as text take a third of a second. Each batch's rows are contiguous, in
        # the order of run_ids, as load_window concatenates them.
        sizes = np.bincount(self.row_batch.cat.codes, minlength=len(self.run_ids))
        parts, offset = [], 0
        for col, size in zip(self.time_columns, sizes, strict=True):
            if col:
                stamps = pd.to_datetime(self.frame[col].iloc[offset : offset + size], utc=True)
                parts.append(stamps.to_numpy("datetime64[ns]"))
            else:
                parts.append(np.full(size, "NaT", "datetime64[ns]"))
            offset += size
        return pd.Series(np.concatenate(parts), index=self.frame.index).dt.tz_localize("UTC")


def load_window(
    name: str,
    baseline: Baseline,
    *,
    last: int | None = None,
    since: str | None = None,
    until: str | None = None,
    logged: Logged | None = None,
) -> Window:
    """Batches of the window: the ``last`` N by event time, or those overlapping
    [since, until). The column ``__version__`` says which model version scored each row."""
    logged = logged or Logged.find(name)
    runs = select_runs(name, last=last, since=since, until=until, logged=logged)
    lo, hi = _range(since, until)
    frames = [_read_rows(run, lo, hi, features=baseline.features) for run in runs]
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise _no_rows(name, since, until)
    run_ids = tuple(r.info.run_id for r in runs)
    labels = _labels_of(frame, _late_labels(logged, run_ids, frame))
    codes = np.repeat(np.arange(len(runs)), [len(f) for f in frames])
    return Window(
        frame=frame,
        run_ids=run_ids,
        **_span(runs, lo, hi),
        labels=labels,
        row_batch=pd.Series(pd.Categorical.from_codes(codes, categories=run_ids)),
        time_columns=tuple(r.data.tags.get(TIMESTAMP_COL) for r in runs),
        event_times=all(TIMESTAMP_COL in r.data.tags for r in runs),
    )


@dataclass(frozen=True)
class ProfiledWindow:
    """A monitoring window read from its batches' profiles and samples, and from the narrow
    columns of their rows (id, event time, predictions, scores, inline target).

    A batch whose profile cannot stand for its part of the window is read in full into
    ``rows``, to be scored and profiled on the fly: one cut by ``--since`` / ``--until``,
    one logged before batches had profiles, one profiled against another baseline (the
    window spans a promotion) and one scored by another model version than the one
    monitored. ``reread`` names them.
    """

    profiles: tuple[BatchProfile, ...]  # samples with their ids, inline labels and version
    outputs: pd.DataFrame  # the narrow columns of the profiled batches' rows
    rows: pd.DataFrame | None  # the full rows of the others, as load_window reads them
    run_ids: tuple[str, ...]
    reread: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    late_labels: pd.DataFrame | None
    labelled_rows: int  # labelled production rows logged so far, in any window
    event_times: bool = True
    unscored: tuple[str, ...] = ()  # notes on batches logged without predictions

    def observe(
        self, baseline: Baseline, policy: Policy, rows: pd.DataFrame | None = None
    ) -> Observed:
        """What ``assess`` reads: the batches' profiles merged with the profile of the full
        ``rows`` (by default as read; the caller may have scored some again)."""
        rows = self.rows if rows is None else rows
        profiles, outputs = list(self.profiles), [self.outputs]
        if rows is not None and len(rows):
            seed = int(hashlib.sha256(",".join(self.reread).encode()).hexdigest()[:16], 16)
            size = policy.batches.sample_size
            profiles.append(BatchProfile.build(rows, baseline, sample_size=size, seed=seed))
            outputs.append(rows[[c for c in (ID, LABEL, PREDICTION, SCORE, BATCH) if c in rows]])
        merged = merge(profiles)
        outputs = pd.concat(outputs, ignore_index=True)
        sample = merged.sample.drop(columns=KEY)
        present = [*baseline.features, PREDICTION]
        return Observed(
            rows=merged.rows,
            sample=sample,
            outputs=outputs,
            counts={
                n: c.observed(p)
                for n, p in bins(baseline).items()
                if n in present and (c := merged.columns.get(n)) is not None
            },
            labels=_labels_of(outputs, self.late_labels),
            sample_labels=_labels_of(sample, self.late_labels),
        )


def load_profiled_window(
    name: str,
    baseline: Baseline,
    version: str,
    *,
    last: int | None = None,
    since: str | None = None,
    until: str | None = None,
    logged: Logged | None = None,
) -> ProfiledWindow:
    """The batches of the window (as ``load_window`` selects them) monitored as ``version``
    of the model with its ``baseline``: profiles and narrow columns where they serve, full
    rows where not (see ``ProfiledWindow``)."""
    logged = logged or Logged.find(name)
    runs = select_runs(name, last=last, since=since, until=until, logged=logged)
    lo, hi = _range(since, until)
    key = baseline_key(baseline)
    profiles, outputs, rows, reread = [], [], [], []
    for run in runs:
        profile = _profile_for(run, key, str(version), lo, hi)
        if profile is None:
            rows.append(_read_rows(run, lo, hi, features=baseline.features))
            reread.append(run.info.run_id)
        else:
            profiles.append(replace(profile, sample=_with_meta(profile.sample, run)))
            outputs.append(_read_rows(run, columns=[PREDICTION, SCORE]))
    if not sum(p.rows for p in profiles) + sum(len(r) for r in rows):
        raise _no_rows(name, since, until)
    outputs = pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame()
    full = pd.concat(rows, ignore_index=True) if rows else None
    run_ids = tuple(r.info.run_id for r in runs)
    return ProfiledWindow(
        profiles=tuple(profiles),
        outputs=outputs,
        rows=full,
        run_ids=run_ids,
        reread=tuple(reread),
        **_span(runs, lo, hi),
        late_labels=_late_labels(logged, run_ids, outputs, *([full] if full is not None else [])),
        labelled_rows=logged.labelled_rows,
        unscored=tuple(
            f"batch {r.info.run_id} was logged without predictions, which the window's "
            f"prediction drift and performance leave out: {r.data.tags[UNSCORED]}"
            for r in runs
            if UNSCORED in r.data.tags
        ),
        event_times=all(TIMESTAMP_COL in r.data.tags for r in runs),
    )


def _profile_for(run, key: str, version: str, lo, hi) -> BatchProfile | None:
    """The batch's profile if it stands for the batch's part of the window: the whole batch
    is in the window, profiled against the baseline ``key``, scored by ``version``."""
    tags = run.data.tags
    if tags[tracking.VERSION] != version:
        return None
    cut = (lo is not None and pd.Timestamp(tags[START]) < lo) or (
        hi is not None and pd.Timestamp(tags[END]) >= hi
    )
    if (cut and TIMESTAMP_COL in tags) or not tracking.has_artifact(run, PROFILE_PATH):
        return None
    profile = read_profile(run)
    return profile if profile.baseline == key else None


def select_runs(
    name: str,
    *,
    last: int | None = None,
    since: str | None = None,
    until: str | None = None,
    logged: Logged | None = None,
) -> list:
    """The batch runs of a window (see ``load_window``), oldest first."""
    everything = list((logged or Logged.find(name)).batches)
    lo, hi = _range(since, until)
    runs = everything
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


def window_key(name: str, version: str, batch_runs, policy, logged: Logged | None = None) -> str:
    """What a cycle's findings depend on: the version, the batches, the labels logged so
    far and the policy. Equal keys, equal findings."""
    labels = [r.info.run_id for r in (logged or Logged.find(name)).labels]
    # [batches] shapes batches as they are logged, and their runs are in the key already;
    # [alerts] and [tracking] say how to tell and how to reach the server, not what is found.
    policy = replace(
        policy,
        batches=type(policy.batches)(),
        alerts=type(policy.alerts)(),
        tracking=type(policy.tracking)(),
    )
    text = repr((str(version), list(batch_runs), labels, policy))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_rows(run, lo=None, hi=None, columns=None, features=None) -> pd.DataFrame:
    """A batch's rows in [lo, hi) (all, when it has no event times), with their id, inline
    label and the version that scored them: its ``features`` and all else it was logged
    with, or ``columns`` only, those named in the file (no feature)."""
    tags = run.data.tags
    ts_col, id_col = tags.get(TIMESTAMP_COL), tags.get(tracking.TAG + "id_col")
    target = tags.get(tracking.TAG + "target")
    if columns is None:
        part = read_rows(run, features)
    else:
        columns = [*columns, *(c for c in (ts_col, id_col, target) if c)]
        part = tracking.read_table_artifact(run, BATCH_PATH, columns)
    if ts_col and (lo is not None or hi is not None):
        t = pd.to_datetime(part[ts_col], utc=True)
        part = part[
            ((t >= lo) if lo is not None else True) & ((t < hi) if hi is not None else True)
        ]
    return _with_meta(part, run)


def _with_meta(part: pd.DataFrame, run) -> pd.DataFrame:
    """``part`` of a batch's rows with their id, inline label and scoring version."""
    tags = run.data.tags
    id_col, target = tags.get(tracking.TAG + "id_col"), tags.get(tracking.TAG + "target")
    if id_col:
        part = part.assign(**{ID: part[id_col]})
    if target and target in part.columns:
        part = part.assign(**{LABEL: part[target]})
    # Rows read back without their predictions (from a source in another order, without
    # ids to join them) are scored again, as if another version had scored them.
    version = tags[tracking.VERSION] if PREDICTION in part.columns else ""
    return part.assign(**{VERSION: version, BATCH: run.info.run_id})


def _no_rows(name, since, until) -> NotFoundError:
    return NotFoundError(
        f"the batches of model {name!r} hold no rows between {since} and {until}",
        "widen the window with --since / --until, or use --last N",
    )


def _late_labels(logged: Logged, run_ids, *frames: pd.DataFrame) -> pd.DataFrame | None:
    """The late labels of the batches ``run_ids``, when some frame has ids to join them to."""
    if not any(ID in f.columns for f in frames):
        return None
    return logged.labels_for(run_ids)


def _labels_of(frame: pd.DataFrame, table: pd.DataFrame | None) -> pd.Series | None:
    """Aligned with ``frame``: each row's inline label, else its late label from ``table``,
    joined on the row's batch and id (by id alone for labels logged before labels were
    matched to batches)."""
    inline = frame[LABEL] if LABEL in frame.columns else None
    if ID not in frame.columns or table is None:
        return inline
    # Ids compare as text, with whole floats as ints: a CSV column of ids with a gap in it
    # is read as floats (1.0), its batch as ints (1).
    ids = pd.Series(as_labels(frame[ID]), index=frame.index, dtype=object)
    table_ids = as_labels(table[ID])
    joined = pd.Series(np.nan, index=frame.index, dtype=object)
    batched = table[BATCH].notna().to_numpy() if BATCH in table.columns else None
    if batched is not None and batched.any() and BATCH in frame.columns:
        keys = frame[BATCH].astype(str) + "\x1f" + ids
        known = table[BATCH].astype(str)[batched] + "\x1f" + table_ids[batched]
        joined = keys.map(dict(zip(known, table[LABEL][batched], strict=True)))
    loose = ~batched if batched is not None else np.ones(len(table), bool)
    if loose.any():
        by_id = ids.map(dict(zip(table_ids[loose], table[LABEL][loose], strict=True)))
        joined = joined.where(joined.notna(), by_id)
    if inline is not None:
        joined = inline.where(inline.notna(), joined)
    return None if joined.isna().all() else joined.infer_objects()


def _range(since: str | None, until: str | None) -> tuple:
    """``--since`` and ``--until`` as times (None where not given)."""
    lo = _parse_time(since, "--since") if since is not None else None
    hi = _parse_time(until, "--until") if until is not None else None
    return lo, hi


def _span(runs, lo, hi) -> dict:
    """A window's start and end: the range asked for, else what its batches cover."""
    return dict(
        start=lo if lo is not None else min(pd.Timestamp(r.data.tags[START]) for r in runs),
        end=hi if hi is not None else max(pd.Timestamp(r.data.tags[END]) for r in runs),
    )


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
