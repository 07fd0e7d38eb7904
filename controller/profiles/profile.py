"""Per-feature profiles: fixed bins learned from the reference, counts that merge.

A profile is learned once from the training data (``learn``): quantile bin edges for a
numeric feature, the category list for a categorical or boolean one. Any later data is
counted into the same bins (``count``), so a production window, a single batch or a shard on
another machine all give counts that add up (``merge``) and compare bin by bin.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from controller._errors import InputError, shown

Kind = Literal["numeric", "categorical", "boolean"]
_CATEGORICAL_VALUES = ("string", "empty", "boolean", "categorical")


def kind_of(series: pd.Series) -> Kind:
    """The feature type of a column, or an InputError for a type driftctl cannot monitor."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if pd.api.types.is_object_dtype(dtype) and inferred not in _CATEGORICAL_VALUES:
            raise InputError(
                f"column {series.name!r} has dtype object holding {inferred} values "
                f"(for example {shown(series.dropna(), 3)})",
                "cast it to one type before handing it to driftctl: numbers for a numeric "
                "feature, strings for a categorical one",
            )
        # Booleans with missing values arrive as objects (from CSV, for instance).
        return "boolean" if inferred == "boolean" else "categorical"
    raise InputError(
        f"column {series.name!r} has dtype {dtype}, which driftctl cannot monitor",
        "pass only numeric, categorical (string) and boolean features; drop the column, or "
        "name it with --id-col / --timestamp-col if it is an identifier or a time stamp",
    )


def numeric_values(series: pd.Series) -> np.ndarray:
    """A column as float64, with anything non-numeric as NaN."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def category_counts(series: pd.Series) -> tuple[list[str], np.ndarray]:
    """Distinct non-missing values as strings (booleans as 'True'/'False') and their counts.

    Only the distinct values are converted, so a million-row column costs one factorize.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    return [v if isinstance(v, str) else str(v) for v in uniques], counts


@dataclass(frozen=True)
class FeatureProfile:
    """What the reference looked like for one feature.

    ``counts`` has one entry per bin: for numeric features ``len(edges) + 1`` bins, the
    i-th holding values in ``(edges[i-1], edges[i]]`` (the first and last bins are open and
    empty in the reference); for categorical and boolean features
    one bin per category plus a last bin for values the reference never had. A categorical
    feature with more than ``max_categories`` distinct values is counted instead in
    ``buckets`` bins by a stable hash of its value (``categories`` is then None), which keeps
    every value's share unbiased. Missing values are counted apart in ``missing``.
    """

    name: str
    kind: Kind
    dtype: str
    count: int
    missing: int
    counts: tuple[int, ...]
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None
    buckets: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def count_values(self, series: pd.Series) -> np.ndarray:
        """Counts of ``series`` in this profile's bins (missing values left out)."""
        if self.kind == "numeric":
            return bin_counts(numeric_values(series), self.edges)
        labels, counts = category_counts(series)
        if self.buckets:
            idx = np.array([zlib.crc32(v.encode()) % self.buckets for v in labels], dtype=int)
            n_bins = self.buckets
        else:
            idx = pd.Index(self.categories).get_indexer(labels)
            idx[idx < 0] = len(self.categories)
            n_bins = len(self.categories) + 1
        return np.bincount(idx, weights=counts, minlength=n_bins).astype(np.int64)

    @property
    def outside_share(self) -> float:
        """Share of values in the open outer bins: numeric values beyond the reference's
        range, categories it never saw; NaN for hashed categories, which cannot tell."""
        if self.buckets:
            return float("nan")
        if not self.count:
            return 0.0
        outer = self.counts[-1] + (self.counts[0] if self.kind == "numeric" else 0)
        return outer / self.count

    def observe(self, series: pd.Series) -> FeatureProfile:
        """Profile ``series`` in this profile's bins (same edges and categories)."""
        if self.kind == "numeric":  # one conversion serves the counts and the summary
            x = numeric_values(series)
            counts, stats = bin_counts(x, self.edges), _numeric_summary(x)
        else:
            counts, stats = self.count_values(series), {}
        return replace(
            self,
            count=int(counts.sum()),
            missing=int(series.isna().sum()),
            counts=tuple(int(c) for c in counts),
            **stats,
        )

    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """Combine two profiles over the same bins, as if their data had been counted once."""
        if (self.edges, self.categories) != (other.edges, other.categories):
            raise ValueError(f"profiles of {self.name!r} use different bins and cannot merge")
        n1, n2 = self.count, other.count
        merged = {}
        if self.kind == "numeric" and n1 and n2:
            mean = (n1 * self.mean + n2 * other.mean) / (n1 + n2)
            var = (
                n1 * (self.std**2 + (self.mean - mean) ** 2)
                + n2 * (other.std**2 + (other.mean - mean) ** 2)
            ) / (n1 + n2)
            merged = dict(
                min=min(self.min, other.min),
                max=max(self.max, other.max),
                mean=mean,
                std=float(np.sqrt(var)),
            )
        elif self.kind == "numeric":
            src = self if n1 else other
            merged = dict(min=src.min, max=src.max, mean=src.mean, std=src.std)
        return replace(
            self,
            count=n1 + n2,
            missing=self.missing + other.missing,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            **merged,
        )

    def to_dict(self) -> dict:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {**out, "missing_rate": self.missing_rate}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureProfile:
        data = dict(data)
        data.pop("missing_rate", None)  # derived, written for people reading the file
        for key in ("counts", "edges", "categories"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def bin_counts(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Counts of the non-NaN values of ``x`` in the bins ``(edges[i-1], edges[i]]``, open
    at both ends (``len(edges) + 1`` bins)."""
    if len(edges) > 64:
        idx = np.searchsorted(np.asarray(edges), x[~np.isnan(x)], side="left")
        return np.bincount(idx, minlength=len(edges) + 1)
    # For the few edges of quantile bins, one vectorised comparison per edge counts the
    # values at or below it (NaN never is) many times faster than a binary search per value.
    at_or_below = [np.count_nonzero(x <= e) for e in edges]
    present = x.size - np.count_nonzero(np.isnan(x))
    return np.diff(np.array([0, *at_or_below, present], dtype=np.int64))


def _numeric_summary(x: np.ndarray) -> dict:
    x = x[~np.isnan(x)]
    if x.size == 0:
        return dict(min=None, max=None, mean=None, std=None)
    return dict(min=float(x.min()), max=float(x.max()), mean=float(x.mean()), std=float(x.std()))


def learn(series: pd.Series, *, n_bins: int = 10, max_categories: int = 1000) -> FeatureProfile:
    """Learn bins from reference data and count it into them."""
    name = str(series.name)
    kind = kind_of(series)
    if kind == "numeric":
        x = numeric_values(series)
        x = x[~np.isnan(x)]
        quantiles = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1))) if x.size else []
        # The first edge sits just below the minimum and the last is the maximum, so the
        # two open outer bins hold exactly the values the reference never reached.
        inner = quantiles[1:] if len(quantiles) > 1 else quantiles
        edges = (
            tuple(float(e) for e in (np.nextafter(quantiles[0], -np.inf), *inner))
            if len(quantiles)
            else ()
        )
        base = FeatureProfile(name, kind, str(series.dtype), 0, 0, (), edges=edges)
    else:
        labels = sorted(set(category_counts(series)[0]))
        many = len(labels) > max_categories
        base = FeatureProfile(
            name,
            kind,
            str(series.dtype),
            0,
            0,
            (),
            categories=None if many else tuple(labels),
            buckets=max_categories if many else None,
        )
    return base.observe(series)
