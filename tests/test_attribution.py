"""SHAP attributions with real models and real shap: additivity, pipelines, shifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from controller import Policy, assess, build_baseline
from controller.attribution.explain import Explainer
from controller.attribution.shift import compare, ndcg

N = 1500


def _shared_data(seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Constant data for the parametrized tests, drawn once at import from a generator of
    its own, which no test draws from again."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=N), "b": rng.normal(size=N), "c": rng.normal(size=N)})
    y_class = (x.a + 0.5 * x.b + rng.normal(0, 0.3, N) > 0).astype(int)
    y_reg = 2 * x.a - x.b + rng.normal(0, 0.1, N)
    return x, y_class, y_reg


X, Y_CLASS, Y_REG = _shared_data(0)


def _output(model, x, kind):
    if kind == "proba":
        return model.predict_proba(x)[:, 1]
    if kind == "margin":
        return model.decision_function(x)
    return model.predict(x)


@pytest.mark.parametrize(
    "model, y, explainer, output",
    [
        (RandomForestClassifier(30, max_depth=5, random_state=0), Y_CLASS, "tree", "proba"),
        (GradientBoostingClassifier(n_estimators=30, random_state=0), Y_CLASS, "tree", "margin"),
        (HistGradientBoostingClassifier(max_iter=30), Y_CLASS, "tree", "margin"),
        (RandomForestRegressor(30, max_depth=5, random_state=0), Y_REG, "tree", "value"),
        (LogisticRegression(), Y_CLASS, "linear", "margin"),
        (Ridge(), Y_REG, "linear", "value"),
        (KNeighborsClassifier(15), Y_CLASS, "interventional", "proba"),
        (KNeighborsRegressor(15), Y_REG, "interventional", "value"),
    ],
    ids=lambda p: type(p).__name__ if hasattr(p, "fit") else None,
)
def test_attributions_add_up_to_the_model_output(model, y, explainer, output):
    model.fit(X, y)
    e = Explainer(model, X.iloc[:100], seed=0)
    assert e.kind == explainer
    rows = X.iloc[200:260]
    a = e.explain(rows)
    np.testing.assert_allclose(a.values.sum(axis=1) + a.expected, _output(model, rows, output),
                               atol=1e-6)
    assert a.values.shape == (60, 3)
    # The unused feature gets the least attention.
    assert a.mean_abs()[2] < a.mean_abs()[0]


@pytest.mark.parametrize(
    "model, path",
    [
        (GradientBoostingClassifier(n_estimators=30, random_state=0), "exact"),
        (RandomForestClassifier(30, max_depth=5, random_state=0), "exact"),
        (LogisticRegression(), "exact"),
        (HistGradientBoostingClassifier(max_iter=30), "exact"),
    ],
    ids=["gradient-boosting", "forest", "linear", "hgb"],
)
def test_loss_attributions_add_up_to_each_rows_log_loss(model, path):
    model.fit(X, Y_CLASS)
    e = Explainer(model, X.iloc[:50], seed=0, per_row=50)  # the whole background
    rows, labels = X.iloc[300:340], Y_CLASS.iloc[300:340]
    a = e.explain_loss(rows, labels)
    assert a.explainer == path
    p = model.predict_proba(rows)[:, 1]
    log_loss = -np.log(np.where(labels == 1, p, 1 - p))
    np.testing.assert_allclose(a.output, log_loss, rtol=1e-6)
    # The base value is the expected loss over the background, the same for each label.
    for label in (0, 1):
        base = a.expected[(labels == label).to_numpy()]
        np.testing.assert_allclose(base, base[0], atol=1e-6)


def test_pipeline_attributions_are_summed_back_to_input_features(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    frame = X.assign(seg=rng.choice(["u", "v", "w"], N))
    y = (frame.a + (frame.seg == "u") * 1.5 + rng.normal(0, 0.3, N) > 0.5).astype(int)
    model = Pipeline([
        ("prep", ColumnTransformer([("onehot", OneHotEncoder(), ["seg"]),
                                    ("scale", StandardScaler(), ["a", "b", "c"])])),
        ("clf", LogisticRegression()),
    ]).fit(frame, y)
    e = Explainer(model, frame.iloc[:100])
    rows = frame.iloc[500:600]
    ours = e.explain(rows)
    # Oracle: shap on the final estimator over the preprocessed columns, summed by hand.
    pre = model[:-1]
    direct = shap.LinearExplainer(model[-1], pre.transform(frame.iloc[:100])).shap_values(
        pre.transform(rows))
    names = list(pre.get_feature_names_out())
    onehot = [i for i, n in enumerate(names) if n.startswith("onehot__seg_")]
    assert len(onehot) == 3
    np.testing.assert_allclose(ours.values[:, 3], direct[:, onehot].sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(ours.values[:, 0], direct[:, names.index("scale__a")],
                               atol=1e-10)
    np.testing.assert_allclose(ours.output, model.decision_function(rows), atol=1e-8)



@pytest.mark.parametrize(
    "columns", [slice(0, 2), slice("a", "b"), [True, True, False, False], np.array([0, 1])],
    ids=["positions", "labels", "mask", "array"],
)
def test_any_column_spec_of_a_column_transformer_is_summed_back_like_names(columns):
    frame = X.assign(seg=np.where(X.c > 0, "u", "v"))[["a", "b", "c", "seg"]]

    def fitted(numeric):
        encode = ColumnTransformer([("num", StandardScaler(), numeric),
                                    ("cat", OneHotEncoder(), ["seg"])])
        return Pipeline([("pre", encode), ("gb", GradientBoostingClassifier(
            n_estimators=20, random_state=0))]).fit(frame, Y_CLASS)

    def explained(model):
        return Explainer(model, frame.iloc[:100]).explain(frame.iloc[:20])

    named = explained(fitted(["a", "b"]))
    other = explained(fitted(columns))
    assert named.explainer == other.explainer == "tree"
    np.testing.assert_allclose(other.values, named.values, atol=1e-12)

def test_ndcg_matches_a_hand_computed_example():
    # Baseline attributions A=0.5, B=0.3, C=0.2; production ranks B, A, C.
    # DCG = 0.3/log2(2) + 0.5/log2(3) + 0.2/log2(4) = 0.3 + 0.315465 + 0.1 = 0.715465
    # iDCG = 0.5/log2(2) + 0.3/log2(3) + 0.2/log2(4) = 0.5 + 0.189279 + 0.1 = 0.789279
    assert ndcg(np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.6, 0.1])) == pytest.approx(
        0.715465 / 0.789279, abs=1e-6)
    assert ndcg(np.array([0.5, 0.3, 0.2]), np.array([0.9, 0.5, 0.01])) == 1.0



def test_a_model_that_ignores_its_inputs_has_not_shifted():
    zeros = np.zeros((50, 3))
    shift = compare(zeros, zeros, ("a", "b", "c"), explainer="exact",
                    limits=Policy().attribution, rng=np.random.default_rng(0))
    assert shift.spearman == 1.0 and shift.ndcg == 1.0 and shift.total_shift == 0.0
    assert shift.shifted == [] and not shift.alert

def _credit(n, seed, *, shift=None, rule=("a", "b")):
    r = np.random.default_rng(seed)
    f = pd.DataFrame({"a": r.normal(size=n), "b": r.normal(size=n), "unused": r.normal(size=n)})
    if shift:
        f[shift] += 1.5
    f["y"] = (f[list(rule)].sum(axis=1) + r.normal(0, 0.3, n) > 0).astype(int)
    return f


def _fitted(rule):
    train = _credit(3000, 1, rule=rule)
    model = RandomForestClassifier(50, max_depth=6, random_state=0).fit(
        train[["a", "b", "unused"]], train.y)
    return model, build_baseline(_credit(2000, 2, rule=rule), model=model, target="y")


@pytest.fixture(scope="module")
def leaning_model():
    """A forest that leans on a and b equally and ignores 'unused'."""
    return _fitted(("a", "b"))


def test_a_shift_in_the_feature_the_model_leans_on_is_caught_and_an_unused_one_is_not(
    leaning_model,
):
    model, baseline = leaning_model
    policy = Policy()
    leaned = assess(baseline, _credit(3000, 3, shift="a").drop(columns="y"), policy,
                    model=model)
    assert "a" in leaned.drifted
    assert "a" in leaned.attribution.shifted and "unused" not in leaned.attribution.shifted
    ignored = assess(baseline, _credit(3000, 4, shift="unused").drop(columns="y"), policy,
                     model=model)
    assert ignored.drifted == ["unused"]  # the data drifted...
    assert ignored.attribution.shifted == []  # ...but not what the model pays attention to
    assert ignored.attribution.ndcg > 0.99 and leaned.attribution.total_shift > 0.05
    metrics = leaned.metrics()
    for key in ("attribution.ndcg", "attribution.spearman", "attribution.total_shift",
                "attribution.share_change.a", "attribution.verdict.a",
                "attribution.mean_abs.unused"):
        assert key in metrics


def test_concept_drift_is_quiet_in_the_data_and_loud_in_the_loss():
    model, baseline = _fitted(("a",))
    window = _credit(3000, 5, rule=("b",))  # same inputs; the label now follows b
    inputs = window.drop(columns="y")
    inputs["__prediction__"] = model.predict(inputs).astype(str)
    inputs["__score__"] = model.predict_proba(inputs[["a", "b", "unused"]])[:, 1]
    report = assess(baseline, inputs, Policy(), labels=window.y, model=model)
    assert report.drifted == [] and report.prediction and not report.prediction.drifted
    assert report.performance["roc_auc"] < baseline.performance["roc_auc"] - 0.2
    loss = {f.feature: f.loss_change for f in report.attribution.features}
    # The loss now comes from the feature the model still leans on, which stopped
    # explaining the label; the features it ignores carry none of it.
    assert max(loss, key=loss.get) == "a" and loss["a"] > 0.3
    assert abs(loss["b"]) < 0.1 * loss["a"] and abs(loss["unused"]) < 0.1 * loss["a"]


def test_cost_is_bounded_and_results_are_deterministic(leaning_model):
    model, baseline = leaning_model
    big = _credit(50_000, 6).drop(columns="y")
    one = assess(baseline, big, Policy(), model=model).attribution
    two = assess(baseline, big, Policy(), model=model).attribution
    assert one == two
    assert one.n_rows == Policy().attribution.sample_size


def test_a_model_that_cannot_be_explained_leaves_a_note_and_the_rest_of_the_cycle(
    global_random_seed,
):
    from sklearn.dummy import DummyClassifier

    rng = np.random.default_rng(global_random_seed)
    frame = pd.DataFrame({"city": rng.choice(["x", "y"], 500), "n": rng.normal(size=500)})
    model = DummyClassifier().fit(frame, rng.integers(0, 2, 500))
    baseline = build_baseline(frame, model=model)
    assert baseline.attribution_values is None
    assert "non-numeric" in baseline.attribution["note"]
    report = assess(baseline, frame, Policy(), model=model)
    assert report.attribution is None
    assert report.notes and report.notes[0].startswith("attributions unavailable")
    assert report.features and "drift.psi.n" in report.metrics()
