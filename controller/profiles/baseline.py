"""The training baseline: what the model's data and predictions looked like at release.

``build`` makes one from the training data and the model; ``storage`` saves and loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from controller.profiles.profile import FeatureProfile

FORMAT_VERSION = 1
PREDICTION = "__prediction__"
SCORE = "__score__"
RESERVED = (PREDICTION, SCORE)


@dataclass(frozen=True)
class Baseline:
    """Profiles of the features and predictions, a reference sample of rows, the model's
    performance and, when it could be explained, its attributions on the reference rows."""

    features: dict[str, FeatureProfile]
    reference: pd.DataFrame = field(repr=False)
    n_rows: int
    task: str | None = None
    target: str | None = None
    positive_class: str | None = None
    prediction: FeatureProfile | None = None
    performance: dict[str, float] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    attribution: dict = field(default_factory=dict)
    attribution_values: pd.DataFrame | None = field(default=None, repr=False)
