"""Building a baseline from the training data: profiles, the model's predictions and
performance, and its attributions on the reference rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from controller._errors import InputError, shown
from controller.attribution.explain import Explainer, NotExplainable, unexplained
from controller.inputs.model import Predictions, predict, task_of
from controller.inputs.tables import check_names, require_values
from controller.policy import Attribution
from controller.profiles.baseline import PREDICTION, RESERVED, SCORE, Baseline
from controller.profiles.profile import learn
from controller.statistics import performance
from controller.statistics.stats import shares


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
            f"target column {target!r} is not in the data (columns: {shown(data.columns)})",
            "pass the name of the label column with --target, or leave it out",
        )
    features = [c for c in data.columns if c != target and c not in exclude]
    clash = sorted(set(features) & set(RESERVED))
    if clash or not features:
        raise InputError(
            f"column names {clash} are reserved by driftctl" if clash else "no feature columns",
            "rename those columns" if clash else "pass a table with at least one feature",
        )
    require_values(data, features)
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


def baseline_attributions(
    model,
    reference: pd.DataFrame,
    features: list[str],
    target: str | None,
    *,
    rows: int,
    background: int,
    loss_rows: int,
    seed: int,
    per_row: int | None = None,
) -> tuple[pd.DataFrame | None, dict]:
    """SHAP values of the first ``rows`` reference rows, and what made them (with a target,
    the mean loss attribution over the first ``loss_rows``).

    A model that cannot be explained gives no values and a ``note`` saying why.
    """
    loss = None
    try:
        explainer = Explainer(
            model, reference[features].iloc[:background], seed=seed, per_row=per_row
        )
        values = explainer.explain(reference[features].iloc[:rows])
        if target is not None:
            sample = reference.iloc[:loss_rows]
            loss = explainer.explain_loss(sample[features], sample[target])
    except NotExplainable as exc:  # monitoring goes on without attributions, saying why
        return None, {"note": unexplained(exc)}
    mean_abs = values.mean_abs()
    info = {
        "explainer": values.explainer,
        "rows": len(values.values),
        "mean_abs": dict(zip(features, map(float, mean_abs), strict=True)),
        "share": dict(zip(features, map(float, shares(mean_abs)), strict=True)),
        "rank": [features[i] for i in np.argsort(-mean_abs, kind="stable")],
    }
    if loss is not None:
        info["loss"] = dict(zip(features, map(float, loss.values.mean(axis=0)), strict=True))
        info["loss_explainer"] = loss.explainer
    return pd.DataFrame(values.values, columns=features), info
