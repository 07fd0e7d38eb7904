"""Data-quality checks of a production window against the baseline's profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller._errors import InputError
from controller.policy import Quality
from controller.profiles.profile import FeatureProfile, kind_of, numeric_values


@dataclass(frozen=True)
class QualityCheck:
    """One check on one column: ``value`` against ``threshold`` (None: any value alerts)."""

    feature: str
    check: str
    value: float
    threshold: float | None
    alert: bool


def check_schema(
    profiles: dict[str, FeatureProfile], window: pd.DataFrame, ignore: tuple[str, ...] = ()
) -> list[QualityCheck]:
    """Missing and extra columns, and columns whose type changed; ``ignore`` names
    columns that are not features (ids, time stamps, predictions)."""
    out = [
        QualityCheck(str(name), "extra_column", 1.0, None, True)
        for name in sorted(set(window.columns) - set(profiles) - set(ignore), key=str)
    ]
    for name, profile in profiles.items():
        if name not in window.columns:
            out.append(QualityCheck(name, "missing_column", 1.0, None, True))
            continue
        series = window[name]
        try:
            kind = kind_of(series) if series.notna().any() else profile.kind
        except InputError:
            kind = "unsupported"
        if kind != profile.kind:
            out.append(QualityCheck(name, "type_mismatch", 1.0, None, True))
    return out


def check_values(
    profiles: dict[str, FeatureProfile], observed: dict[str, FeatureProfile], limits: Quality
) -> list[QualityCheck]:
    """Missing-rate change, and values outside the reference (range or categories).

    ``observed`` holds the window's profiles, counted in the baseline's bins.
    """
    out = []
    for name, seen in observed.items():
        ref = profiles[name]
        change = seen.missing_rate - ref.missing_rate
        out.append(_limit(name, "missing_rate_change", change, limits.max_missing_rate_increase))
        if ref.kind == "numeric":
            out.append(
                _limit(
                    name, "out_of_range_share", seen.outside_share, limits.max_out_of_range_share
                )
            )
        else:
            out.append(_limit(name, "unseen_share", seen.outside_share, limits.max_unseen_share))
    return out


def check_infinite(profiles: dict[str, FeatureProfile], sample: pd.DataFrame) -> list[QualityCheck]:
    """Infinite values, which no real quantity takes: any share of them alerts (estimated
    on the window's uniform sample)."""
    out = []
    for name, ref in profiles.items():
        if ref.kind == "numeric" and name in sample.columns and len(sample):
            share = float(np.isinf(numeric_values(sample[name])).mean())
            out.append(QualityCheck(name, "infinite_share", share, 0.0, share > 0))
    return out


def _limit(feature: str, check: str, value: float, threshold: float) -> QualityCheck:
    return QualityCheck(feature, check, float(value), threshold, bool(value > threshold))
