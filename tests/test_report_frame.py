"""Report.to_frame: the long table says what the metrics and the verdicts say."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from controller import Policy, assess, build_baseline
from controller.results.naming import metric_safe
from controller.results.report import FRAME_COLUMNS, Report

# Metrics of the whole window that are counts or summaries of the rows, not rows themselves.
SUMMARIES = {
    "drift.share_drifted", "drift.weighted_share_drifted", "drift.n_drifted",
    "drift.expected_false_alarms", "window.rows", "window.labelled_rows",
    "attribution.n_shifted", "retrain.called", "retrain.triggered",
}


def _credit(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({
        "a": rng.normal(shift, 1.0, n),
        "b": rng.normal(size=n),
        "odd name$": rng.normal(size=n),
        "city": rng.choice(["x", "y", "z"], n),
    })
    frame["y"] = (frame.a + frame.b + rng.normal(0, 0.3, n) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def report() -> Report:
    """A window with drift, quality alerts, labels and an explained model: every section."""
    rng = np.random.default_rng(11)
    features = ["a", "b", "odd name$", "city"]
    train = _credit(2000, rng)
    model = Pipeline([
        ("enc", ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                                  remainder="passthrough")),
        ("rf", RandomForestClassifier(30, max_depth=5, random_state=0)),
    ]).fit(train[features], train.y)
    baseline = build_baseline(_credit(2000, rng), model=model, target="y")
    window = _credit(2000, rng, shift=1.0)
    window.loc[:499, "b"] = np.nan  # a missing-rate alert
    window.loc[:49, "city"] = "w"  # unseen categories
    labels = window.pop("y")
    window["__prediction__"] = model.predict(window[features]).astype(str)
    window["__score__"] = model.predict_proba(window[features])[:, 1]
    return assess(baseline, window, Policy(), labels=labels, model=model)


def _metric_names(row) -> dict[str, float]:
    """The MLflow metrics the row stands for, by the names ``Report.metrics`` documents."""
    section, stat = row.section, row.statistic
    key = None if pd.isna(row.feature) else metric_safe(row.feature)
    if section == "drift":
        out = {f"drift.{stat}.{key}": row.value}
        if not pd.isna(row.alert):
            out.update({
                f"drift.threshold.{key}": row.threshold,
                f"drift.p_value.{key}": row.p_value,
                f"drift.q_value.{key}": row.q_value,
                f"drift.verdict.{key}": float(row.alert),
            })
        return out
    if section == "prediction":
        out = {f"prediction.{stat}": row.value}
        if not pd.isna(row.alert):
            out.update({
                "prediction.threshold": row.threshold,
                "prediction.p_value": row.p_value,
                "prediction.verdict": float(row.alert),
            })
        return out
    if section == "quality":
        return {f"quality.{stat}.{key}": row.value}
    if section == "multivariate" and key is None:
        return {
            f"multivariate.{stat}.value": row.value,
            f"multivariate.{stat}.threshold": row.threshold,
            f"multivariate.{stat}.verdict": float(row.alert),
        }
    if section == "multivariate":  # a feature the domain classifier relied on
        return {f"multivariate.{stat}.{key}": row.value}
    if section == "attribution" and key is None:
        return {f"attribution.{stat}": row.value}
    if section == "attribution":
        out = {f"attribution.{stat}.{key}": row.value}
        if stat == "mean_abs":
            out[f"attribution.baseline_mean_abs.{key}"] = row.baseline
        if stat == "share_change":
            out[f"attribution.share_change_low.{key}"] = row.ci_low
            out[f"attribution.share_change_high.{key}"] = row.ci_high
            out[f"attribution.verdict.{key}"] = float(row.alert)
        return out
    if section == "estimated":
        return {
            f"performance.estimated.{stat}": row.value,
            f"performance.estimated.{stat}.low": row.ci_low,
            f"performance.estimated.{stat}.high": row.ci_high,
        }
    assert section == "performance"
    out = {f"performance.{stat}": row.value}
    if not pd.isna(row.baseline):
        out[f"performance.{stat}.change"] = row.value - row.baseline
    return out


def test_the_frame_holds_every_metric_with_the_same_value(report):
    frame = report.to_frame()
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert set(frame.section) == {
        "drift", "prediction", "quality", "multivariate", "attribution", "performance",
        "estimated",
    }
    from_frame = {}
    for row in frame.itertuples(index=False):
        from_frame.update(_metric_names(row))
    from_frame = {k: v for k, v in from_frame.items() if v is not None and math.isfinite(v)}
    metrics = report.metrics()
    assert set(metrics) - SUMMARIES == set(from_frame)
    assert from_frame == pytest.approx({k: metrics[k] for k in from_frame}, rel=1e-12)


def test_the_frame_gives_the_features_verdicts(report):
    frame = report.to_frame()
    drift = frame[frame.section == "drift"]
    judged = drift[drift.alert.notna()]
    # One verdict per feature, drawn from the statistic its rule names.
    assert list(judged.feature) == [f.feature for f in report.features]
    assert list(judged.statistic) == [f.statistic for f in report.features]
    assert list(judged.feature[judged.alert]) == report.drifted and "a" in report.drifted
    others = drift[drift.alert.isna()]
    assert others[["threshold", "p_value", "q_value"]].isna().all().all()
    quality = frame[frame.section == "quality"]
    alerts = quality[quality.alert.astype(bool)]
    assert list(zip(alerts.statistic, alerts.feature, strict=True)) == [
        (q.check, q.feature) for q in report.quality_alerts
    ]
    assert {"missing_rate_change", "unseen_share"} <= set(alerts.statistic)
    shifted = frame[(frame.section == "attribution") & (frame.statistic == "share_change")]
    assert list(shifted.feature[shifted.alert]) == report.attribution.shifted


def test_columns_have_stable_types_even_when_empty():
    empty = Report(n_rows=0, features=(), prediction=None, quality=(), performance={},
                   baseline_performance={}).to_frame()
    assert empty.empty and tuple(empty.columns) == FRAME_COLUMNS
    assert empty.dtypes["alert"] == "boolean" and empty.dtypes["value"] == "float64"
