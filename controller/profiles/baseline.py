"""The training baseline: what the model's data and predictions looked like at release.

On disk a baseline is a folder (an MLflow artifact directory) with two files:

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
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from controller._errors import InputError
from controller.inputs.model import Predictions, predict, task_of
from controller.inputs.tables import check_names, require_values
from controller.policy import Attribution
from controller.profiles.profile import FeatureProfile, learn
from controller.statistics import performance

FORMAT_VERSION = 1
PREDICTION = "__prediction__"
SCORE = "__score__"
RESERVED = (PREDICTION, SCORE)


@dataclass(frozen=True)
class Baseline:
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

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "n_rows": self.n_rows,
            "task": self.task,
            "target": self.target,
            "positive_class": self.positive_class,
            "performance": self.performance,
            "features": [p.to_dict() for p in self.features.values()],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "attribution": self.attribution,
        }
        (folder / "baseline.json").write_text(json.dumps(meta, indent=1))
        self.reference.to_parquet(folder / "reference.parquet", index=False)
        if self.attribution_values is not None:
            self.attribution_values.to_parquet(folder / "attribution.parquet", index=False)

    @classmethod
    def load(cls, folder: str | Path) -> Baseline:
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
        return cls(
            attribution_values=pd.read_parquet(shap_file) if shap_file.exists() else None,
            features={f.name: f for f in features},
            reference=pd.read_parquet(folder / "reference.parquet"),
            prediction=FeatureProfile.from_dict(prediction) if prediction else None,
            # Keys a later driftctl may add are left for it to read.
            **{k: v for k, v in meta.items() if k in {f.name for f in fields(cls)}},
        )


def build_baseline(
    data: pd.DataFrame,
    *,
    model=None,
    target: str | None = None,
    predictions=None,
    exclude: tuple[str, ...] = (),
    sample_size: int = 10_000,
    n_bins: int = 10,
    max_categories: int = 1000,
    attribution: Attribution | None = None,
    seed: int = 0,
) -> Baseline:
    """Profile ``data`` (every column but ``target`` and ``exclude`` is a feature).

    Predictions come from ``predictions`` when given, else from ``model``; with a target,
    the model's performance on ``data`` is recorded too.
    """
    check_names(data)
    if target is not None and target not in data.columns:
        raise InputError(
            f"target column {target!r} is not in the data (columns: {list(data.columns)})",
            "pass the name of the label column with --target, or leave it out",
        )
    features = [c for c in data.columns if c != target and c not in exclude]
    clash = sorted(set(features) & set(RESERVED))
    if clash or not features:
        raise InputError(
            f"column names {clash} are reserved by driftctl" if clash else "no feature columns",
            "rename those columns" if clash else "pass a table with at least one feature",
        )
    require_values(data, features, reference=True)
    if target is not None and data[target].isna().any():
        raise InputError(
            f"target column {target!r} has {int(data[target].isna().sum())} missing value(s)",
            "drop the unlabelled rows from the baseline data",
        )
    X = data[features]
    if predictions is None and model is not None:
        predictions = predict(model, X)
    if predictions is not None and not isinstance(predictions, Predictions):
        predictions = Predictions(np.asarray(predictions))
    y = data[target] if target is not None else None
    task = None
    if predictions is not None or model is not None or y is not None:
        task = task_of(model, y, predictions.values if predictions is not None else None)

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(data), size=min(sample_size, len(data)), replace=False))
    reference = data.iloc[rows][features + ([target] if target else [])].reset_index(drop=True)
    prediction_profile = None
    scores = {}
    if predictions is not None:
        pred = pd.Series(predictions.for_task(task), name=PREDICTION)
        prediction_profile = learn(pred, n_bins=n_bins, max_categories=max_categories)
        reference[PREDICTION] = pred.iloc[rows].to_numpy()
        if predictions.score is not None:
            reference[SCORE] = np.asarray(predictions.score)[rows]
        if y is not None:
            scores = performance.score(
                task, y.to_numpy(), predictions.values, predictions.score, predictions.positive
            )
    profiles = {f: learn(data[f], n_bins=n_bins, max_categories=max_categories) for f in features}
    for p in profiles.values():
        numeric = p.kind == "numeric"
        if (p.min == p.max) if numeric else sum(c > 0 for c in p.counts) == 1:
            value = p.min if numeric else p.categories[int(np.argmax(p.counts[:-1]))]
            raise InputError(
                f"column {p.name!r} is constant ({value!r}) in the baseline data: "
                "drift cannot be measured against a single value",
                "drop the column from the baseline data (it carries no information)",
            )
    shap_values, shap_info = None, {}
    attribution = attribution or Attribution()  # the policy's sizes, so both sides match
    if model is not None:
        from controller.attribution.explain import baseline_attributions

        shap_values, shap_info = baseline_attributions(
            model,
            reference,
            features,
            target,
            rows=attribution.sample_size,
            background=attribution.background_size,
            loss_rows=attribution.loss_sample_size,
            per_row=attribution.background_per_row,
            seed=seed,
        )
    return Baseline(
        attribution=shap_info,
        attribution_values=shap_values,
        features=profiles,
        reference=reference,
        n_rows=len(data),
        task=task,
        target=target,
        positive_class=predictions.positive if predictions is not None else None,
        prediction=prediction_profile,
        performance=scores,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
