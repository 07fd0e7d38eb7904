"""What one logged batch contributes to a window: counts, moments and a sample that merge.

A ``BatchProfile`` counts a batch's columns into its baseline's frozen bins (the features,
the predictions and the scores), keeps the moments of the numeric ones and a bounded
uniform sample of the rows. Profiles of batches profiled against the same baseline add up
with ``+`` as if their rows had been profiled together: counts and rows add, moments
combine, time ranges widen, and samples merge by bottom-k.

Bottom-k sampling: each row draws a key, uniform in [0, 1), and a sample keeps the rows with
the k smallest keys. The k smallest keys of a union are among the k smallest of each part,
so merging two samples and keeping the k smallest keys again gives a uniform sample of the
union, whatever the order of merging. Keys are multiples of 2⁻⁵³, so a tie at the k-th
key, the one case where the order of merging picks which row is kept, has a chance of about
k·n / 2⁵³: one in a thousand for 10,000 rows kept of a billion.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from functools import reduce

import numpy as np
import pandas as pd

from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.profiles.profile import FeatureProfile, bin_counts, learn, numeric_values

FORMAT_VERSION = 1
KEY = "__key__"  # the sample's column of bottom-k keys
SCORE_BINS = 10


@dataclass(frozen=True)
class Moments:
    """Moments of a numeric column's non-missing values: their number, mean, sum of squared
    deviations from the mean (``m2``), minimum and maximum.

    Parts merge by Chan's formula, which stays exact where a plain sum of squares would
    lose the variance of a feature whose mean is large beside its spread (a time in
    seconds, an amount in cents).
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        """The moments of the values ``x`` (no NaN among them)."""
        if x.size == 0:
            return cls()
        mean = float(x.mean())
        d = x - mean
        return cls(x.size, mean, float(d @ d), float(x.min()), float(x.max()))

    @property
    def sum(self) -> float:
        return self.n * self.mean

    @property
    def var(self) -> float:
        """The population variance (numpy's default, ``ddof=0``)."""
        return self.m2 / self.n if self.n else math.nan

    def __add__(self, other: Moments) -> Moments:
        if not (self.n and other.n):
            return self if self.n else other
        n = self.n + other.n
        delta = other.mean - self.mean
        # Written symmetrically, so that a + b and b + a are equal to the last bit.
        return Moments(
            n,
            (self.n * self.mean + other.n * other.mean) / n,
            self.m2 + other.m2 + delta * delta * (self.n * other.n / n),
            min(self.min, other.min),
            max(self.max, other.max),
        )


@dataclass(frozen=True)
class Column:
    """One column of a batch in its baseline's bins (see ``FeatureProfile.counts``): the
    counts of its present values, its missing values, and its moments if numeric."""

    counts: tuple[int, ...]
    missing: int
    moments: Moments | None = None

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observed(self, profile: FeatureProfile) -> FeatureProfile:
        """This column as ``profile.observe`` would profile its values (``profile`` gives
        the bins it was counted in)."""
        m = self.moments
        summary = {}
        if profile.kind == "numeric" and m is not None:
            summary = dict(
                min=m.min,
                max=m.max,
                mean=m.mean if m.n else None,
                std=math.sqrt(m.var) if m.n else None,
            )
        return replace(
            profile, count=self.count, missing=self.missing, counts=self.counts, **summary
        )

    def __add__(self, other: Column) -> Column:
        return Column(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.missing + other.missing,
            self.moments + other.moments if self.moments is not None else None,
        )


@dataclass(frozen=True)
class BatchProfile:
    """A batch (or the merge of batches) as a window needs it, without its full rows.

    ``columns`` holds the baseline's features, then ``__prediction__`` and ``__score__`` when
    the batch has them and the baseline bins them. A column only some merged batches had
    (scores, where others logged served predictions) holds theirs alone: each column's
    counts and moments say how many values it saw. ``start`` and ``end`` span the event
    times of the rows that have one (None when none has). ``sample`` holds up to
    ``sample_size`` rows, ordered by their key (column ``__key__``).
    """

    baseline: str  # baseline_key of the baseline whose bins the counts use
    rows: int
    columns: dict[str, Column]
    sample_size: int
    sample: pd.DataFrame = field(repr=False, compare=False)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        baseline: Baseline,
        *,
        sample_size: int,
        seed=None,
        keys: np.ndarray | None = None,
        times: pd.Series | None = None,
    ) -> BatchProfile:
        """Profile the rows of ``frame`` (the baseline's features, and the predictions and
        scores if any) in ``baseline``'s bins.

        The sample's keys are ``keys`` if given, else drawn from ``np.random.default_rng(seed)``.
        ``times``, the rows' event times, give the time range.
        """
        columns = {
            name: profile_column(frame[name], profile)
            for name, profile in bins(baseline).items()
            if name in frame.columns
        }
        if keys is None:
            keys = np.random.default_rng(seed).random(len(frame))
        keys = np.asarray(keys, dtype=float)
        # Only the kept rows are copied: the keys pick them before any frame is built.
        kept = _smallest(keys, sample_size)
        sample = frame.iloc[kept].reset_index(drop=True)
        sample.insert(len(sample.columns), KEY, keys[kept])
        known = times.dropna() if times is not None else None
        return cls(
            baseline=baseline_key(baseline),
            rows=len(frame),
            columns=columns,
            sample_size=sample_size,
            sample=sample,
            start=known.min() if known is not None and len(known) else None,
            end=known.max() if known is not None and len(known) else None,
        )

    def __add__(self, other: BatchProfile) -> BatchProfile:
        """The profile of both batches' rows together."""
        if self.baseline != other.baseline:
            raise ValueError(
                f"batch profiles of different baselines ({self.baseline} and "
                f"{other.baseline}) count in different bins and cannot be merged"
            )
        # The smaller k: the k smallest keys of a union are known only for k up to each
        # part's own.
        k = min(self.sample_size, other.sample_size)
        nonempty = [s for s in (self.sample, other.sample) if len(s)] or [self.sample]
        union = pd.concat(nonempty, ignore_index=True)
        kept = _smallest(union[KEY].to_numpy(), k)
        return BatchProfile(
            baseline=self.baseline,
            rows=self.rows + other.rows,
            columns={
                name: self.columns[name] + other.columns[name]
                if name in self.columns and name in other.columns
                else self.columns.get(name) or other.columns[name]
                for name in {**self.columns, **other.columns}
            },
            sample_size=k,
            sample=union.iloc[kept].reset_index(drop=True),
            start=_extreme(min, self.start, other.start),
            end=_extreme(max, self.end, other.end),
        )

    def to_dict(self) -> dict:
        """The profile without its sample, as JSON-safe values (the sample is stored apart,
        as parquet)."""

        def moments(m: Moments | None) -> dict | None:
            if m is None:
                return None
            # The variance is derived, for people reading the file.
            return {**m.__dict__, "var": m.var if m.n else None}

        return {
            "format_version": FORMAT_VERSION,
            "baseline": self.baseline,
            "rows": self.rows,
            "start": self.start.isoformat() if self.start is not None else None,
            "end": self.end.isoformat() if self.end is not None else None,
            "sample_size": self.sample_size,
            "sample_rows": len(self.sample),
            "columns": {
                name: {
                    "counts": list(c.counts),
                    "missing": c.missing,
                    "moments": moments(c.moments),
                }
                for name, c in self.columns.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict, sample: pd.DataFrame | None = None) -> BatchProfile:
        """A profile from ``to_dict``'s output and its sample (none: an empty one)."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"batch profile format version {data.get('format_version')} is not supported "
                f"(this driftctl reads version {FORMAT_VERSION})"
            )

        def moments(m: dict | None) -> Moments | None:
            if m is None:
                return None
            return Moments(**{k: v for k, v in m.items() if k != "var"})

        return cls(
            baseline=data["baseline"],
            rows=data["rows"],
            columns={
                name: Column(tuple(c["counts"]), c["missing"], moments(c["moments"]))
                for name, c in data["columns"].items()
            },
            sample_size=data["sample_size"],
            sample=sample if sample is not None else pd.DataFrame({KEY: np.empty(0)}),
            start=pd.Timestamp(data["start"]) if data["start"] is not None else None,
            end=pd.Timestamp(data["end"]) if data["end"] is not None else None,
        )


def merge(profiles) -> BatchProfile:
    """The sum of one or more batch profiles."""
    return reduce(lambda a, b: a + b, profiles)


def bins(baseline: Baseline) -> dict[str, FeatureProfile]:
    """The frozen bins a batch of ``baseline`` is counted in, by column: its features, its
    predictions' and its scores'.

    Scores get the deciles of the reference sample's scores, as a numeric feature would;
    a baseline without scores gets ten equal bins on [0, 1], the range of a probability.
    """
    out = dict(baseline.features)
    if baseline.prediction is not None:
        out[PREDICTION] = baseline.prediction
    if SCORE in baseline.reference.columns:
        out[SCORE] = learn(baseline.reference[SCORE], n_bins=SCORE_BINS)
    else:
        edges = (np.nextafter(0.0, -1.0), *np.linspace(0, 1, SCORE_BINS + 1)[1:])
        out[SCORE] = FeatureProfile(SCORE, "numeric", "float64", 0, 0, (), edges=edges)
    return out


def baseline_key(baseline: Baseline) -> str:
    """What identifies a baseline to its batch profiles: its creation time and its bins."""
    spec = [
        baseline.created_at,
        [(n, p.kind, p.edges, p.categories, p.buckets) for n, p in bins(baseline).items()],
    ]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def count_frames(frames, columns: dict[str, FeatureProfile]) -> str:
    """What ``frames`` (an iterator of parts of one batch) add up to in the bins of
    ``columns``: their rows, each column's ``Column`` and its infinite values, as JSON, for
    ``add_counts``. An engine calls it on each part of a batch where the part lives."""
    total, rows, infinite = {}, 0, dict.fromkeys(columns, 0)
    for part in frames:
        rows += len(part)
        for name, profile in columns.items():
            column = profile_column(part[name], profile)
            total[name] = total[name] + column if name in total else column
            if profile.kind == "numeric":
                infinite[name] += int(np.isinf(numeric_values(part[name])).sum())
    encoded = {
        n: [list(c.counts), c.missing, c.moments and list(c.moments.__dict__.values())]
        for n, c in total.items()
    }
    return json.dumps([rows, encoded, infinite])


def add_counts(parts, columns: dict[str, FeatureProfile]):
    """The sum of ``count_frames``' results: rows, ``Column`` by name (a column no part saw
    is empty) and infinite values by name."""
    rows, out, infinite = 0, {}, dict.fromkeys(columns, 0)
    for text in parts:
        n, encoded, inf = json.loads(text)
        rows += n
        for name, (counts, missing, moments) in encoded.items():
            column = Column(tuple(counts), missing, Moments(*moments) if moments else None)
            out[name] = out[name] + column if name in out else column
        for name, k in inf.items():
            infinite[name] += k
    for name, profile in columns.items():
        if name not in out:  # no rows at all: empty counts in the column's bins
            dtype = "float64" if profile.kind == "numeric" else object
            out[name] = profile_column(pd.Series([], dtype=dtype), profile)
    return rows, {n: out[n] for n in columns}, infinite


def profile_column(series: pd.Series, profile: FeatureProfile) -> Column:
    """One column's values counted in its ``profile``'s bins, with their moments."""
    missing = int(series.isna().sum())  # as FeatureProfile.observe counts it
    if profile.kind != "numeric":
        return Column(tuple(int(c) for c in profile.count_values(series)), missing)
    x = numeric_values(series)  # one conversion serves the counts and the moments
    counts = bin_counts(x, profile.edges)  # infinities fall in the open outer bins
    return Column(tuple(int(c) for c in counts), missing, Moments.of(x[np.isfinite(x)]))


def _smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest ``keys``, in increasing order of key."""
    if len(keys) > k:
        part = np.argpartition(keys, k - 1)[:k]
        return part[np.argsort(keys[part], kind="stable")]
    return np.argsort(keys, kind="stable")


def _extreme(pick, a, b):
    """``pick`` (min or max) of two values, either of which may be None."""
    if a is None:
        return b
    return a if b is None else pick(a, b)
