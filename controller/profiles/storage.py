"""A baseline on disk: a folder (an MLflow artifact directory) of three files.

* ``baseline.json``: ``format_version``, ``created_at``, ``n_rows``, ``task``, ``target``,
  ``positive_class``, ``performance`` (metric -> value on the baseline data, with a
  target), ``features`` (one FeatureProfile per feature, in column order) and
  ``prediction`` (the profile of the model's predictions, or null);
* ``reference.parquet``: a bounded random sample of the rows (features, target, and the
  model's predictions in ``__prediction__`` / ``__score__``) for the exact tests;
* ``attribution.parquet`` (when the model could be explained): SHAP values of the first
  rows of the reference sample, one column per feature; ``baseline.json``'s
  ``attribution`` says which explainer made them and holds, with a target, the mean
  attribution of each feature to the model's loss (``loss``).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pandas as pd

from controller._errors import InputError
from controller.profiles.baseline import FORMAT_VERSION, Baseline
from controller.profiles.profile import FeatureProfile


def save(baseline: Baseline, folder: str | Path) -> None:
    """Write ``baseline`` into ``folder`` (created if need be)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": baseline.format_version,
        "created_at": baseline.created_at,
        "n_rows": baseline.n_rows,
        "task": baseline.task,
        "target": baseline.target,
        "positive_class": baseline.positive_class,
        "performance": baseline.performance,
        "features": [p.to_dict() for p in baseline.features.values()],
        "prediction": baseline.prediction.to_dict() if baseline.prediction else None,
        "attribution": baseline.attribution,
    }
    (folder / "baseline.json").write_text(json.dumps(meta, indent=1))
    baseline.reference.to_parquet(folder / "reference.parquet", index=False)
    if baseline.attribution_values is not None:
        baseline.attribution_values.to_parquet(folder / "attribution.parquet", index=False)


def load(folder: str | Path) -> Baseline:
    """The baseline saved in ``folder``."""
    folder = Path(folder)
    meta = json.loads((folder / "baseline.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"baseline format version {meta.get('format_version')} is not supported "
            f"(this driftctl reads version {FORMAT_VERSION})",
            "upgrade driftctl, or log the baseline again with this version",
        )
    features = [FeatureProfile.from_dict(f) for f in meta.pop("features")]
    prediction = meta.pop("prediction")
    shap_file = folder / "attribution.parquet"
    return Baseline(
        attribution_values=pd.read_parquet(shap_file) if shap_file.exists() else None,
        features={f.name: f for f in features},
        reference=pd.read_parquet(folder / "reference.parquet"),
        prediction=FeatureProfile.from_dict(prediction) if prediction else None,
        # Keys a later driftctl may add are left for it to read.
        **{k: v for k, v in meta.items() if k in {f.name for f in fields(Baseline)}},
    )
