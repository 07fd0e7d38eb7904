"""Data-quality checks of a production window against the baseline's profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller._errors import InputError
from controller.policy import Quality
from controller.profile import FeatureProfile, as_category_strings, kind_of


@dataclass(frozen=True)
class QualityCheck:
    """One check on one column: ``value`` against ``threshold`` (None: any value alerts)."""

    feature: str
    check: str
    value: float
    threshold: float | None
    alert: bool


def check_quality(
    profiles: dict[str, FeatureProfile],
    window: pd.DataFrame,
    limits: Quality,
    ignore: tuple[str, ...] = (),
) -> list[QualityCheck]:
    """Schema, missing values, out-of-range and unseen values; ``ignore`` names non-features."""
    out: list[QualityCheck] = []
    for name in sorted(set(window.columns) - set(profiles) - set(ignore), key=str):
        out.append(QualityCheck(str(name), "extra_column", 1.0, None, True))
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
            continue
        change = float(series.isna().mean() - profile.missing_rate) if len(series) else 0.0
        out.append(_limit(name, "missing_rate_change", change, limits.max_missing_rate_increase))
        values = series.dropna()
        if profile.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            share = float(np.mean((x < profile.min) | (x > profile.max))) if x.size else 0.0
            out.append(_limit(name, "out_of_range_share", share, limits.max_out_of_range_share))
        else:
            seen = as_category_strings(values).isin(set(profile.categories))
            # Categories pooled as "other" at learning time are not known individually.
            share = float(1 - seen.mean()) if len(values) else 0.0
            out.append(_limit(name, "unseen_share", share, limits.max_unseen_share))
    return out


def _limit(feature: str, check: str, value: float, threshold: float) -> QualityCheck:
    return QualityCheck(feature, check, value, threshold, bool(value > threshold))
