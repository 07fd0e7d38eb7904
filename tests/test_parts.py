"""Profiles, metric names, policies and performance: the parts under the monitoring cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.utils.validation import _validate_metric_name
from sklearn import metrics

from controller import PolicyError
from controller.policy import Policy, Rule
from controller.profiles.profile import learn
from controller.results.naming import metric_safe, name_map
from controller.statistics.performance import score

floats = st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))


@settings(max_examples=80, deadline=None)
@given(st.lists(floats, min_size=2, max_size=200), st.lists(floats, min_size=1, max_size=200))
def test_profiles_merge_as_if_counted_at_once(a, b):
    ref = learn(pd.Series([*a, 0.0, 1.0], name="x"))
    one, two = ref.observe(pd.Series(a, name="x")), ref.observe(pd.Series(b, name="x"))
    whole = ref.observe(pd.Series(a + b, name="x"))
    merged = one.merge(two)
    assert merged.counts == whole.counts
    assert merged.missing == whole.missing and merged.count == whole.count
    if whole.count:
        assert merged.min == whole.min and merged.max == whole.max
        assert np.isclose(merged.mean, whole.mean, rtol=1e-9, atol=1e-6)
        assert np.isclose(merged.std, whole.std, rtol=1e-6, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=100),
       st.lists(st.sampled_from(["a", "b", "zz", None]), min_size=1, max_size=100))
def test_categorical_counts_merge_and_pool_unseen(a, b):
    ref = learn(pd.Series([*a, "a"], name="c"))
    merged = ref.observe(pd.Series(a, name="c")).merge(ref.observe(pd.Series(b, name="c")))
    assert merged.counts == ref.observe(pd.Series(a + b, name="c")).counts
    unseen = sum(v is not None and v not in ref.categories for v in b)
    assert ref.observe(pd.Series(b, name="c")).counts[-1] == unseen


def test_numeric_bins_are_reference_quantiles_with_open_ends():
    x = pd.Series(np.arange(1, 101, dtype=float), name="x")
    p = learn(x, n_bins=4)
    assert p.edges == (np.nextafter(1.0, 0), 25.75, 50.5, 75.25, 100.0)
    assert p.counts == (0, 25, 25, 25, 25, 0)
    assert p.observe(pd.Series([-5.0, 500.0, np.nan], name="x")).counts == (1, 0, 0, 0, 0, 1)
    assert p.observe(pd.Series([-5.0, 1.0, 100.0, 500.0], name="x")).outside_share == 0.5


def _bins_oracle(values, edges) -> list[int]:
    """Bin i holds the values v with edges[i-1] < v <= edges[i]; NaN is left out."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        if not np.isnan(v):
            counts[sum(e < v for e in edges)] += 1
    return counts


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=2, max_size=150),
    st.lists(st.one_of(st.floats(-200, 200), st.just(np.nan), st.sampled_from([np.inf, -np.inf])),
             min_size=0, max_size=150),
    st.sampled_from([3, 10, 100]),
)
def test_numeric_counts_follow_the_bin_definition(reference, window, n_bins):
    profile = learn(pd.Series(reference, name="x"), n_bins=n_bins)
    # values exactly on the edges, where a bin's closed side matters
    window = [*window, *profile.edges]
    counts = profile.count_values(pd.Series(window, name="x"))
    assert counts.tolist() == _bins_oracle(window, profile.edges)
    finite = [v for v in window if not np.isinf(v)]  # batches with inf are refused
    observed = profile.observe(pd.Series(finite, name="x", dtype=float))
    assert list(observed.counts) == _bins_oracle(finite, profile.edges)
    assert observed.count == sum(not np.isnan(v) for v in finite)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_metric_names_are_valid_in_mlflow_and_stable(name):
    safe = metric_safe(name)
    for prefix in ("drift.psi.", "drift.verdict.", "quality.unseen_share."):
        _validate_metric_name(prefix + safe)
    assert metric_safe(name) == safe


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=10, unique=True))
def test_metric_names_never_collide(names):
    assert len({metric_safe(n) for n in names}) == len(names)


def test_valid_names_are_kept_and_the_map_lists_only_changes():
    assert metric_safe("loan_amount") == "loan_amount"
    assert metric_safe("income ($)") != metric_safe("income (%)")
    assert name_map(["loan_amount", "income ($)"]) == {"income ($)": metric_safe("income ($)")}


def test_policy_defaults_and_file(tmp_path):
    default = Policy()
    assert default.rule("age", "numeric") == Rule("wasserstein", "ks", 0.1)
    assert default.rule("zip", "categorical") == Rule("jensen_shannon", "chi2", 0.035)
    assert default.rule("member", "boolean") == Rule("jensen_shannon", "chi2", 0.035)
    path = tmp_path / "p.toml"
    path.write_text(
        "[drift]\nfdr = 0.1\n[drift.numeric]\nstatistic = 'psi'\n"
        "[features.age]\nthreshold = 0.3\n[features.zip]\nignore = true\n"
        "[quality]\nmax_unseen_share = 0.2\n"
    )
    p = Policy.from_toml(path)
    assert p.fdr == 0.1 and p.quality.max_unseen_share == 0.2
    assert p.rule("age", "numeric") == Rule("psi", "ks", 0.1, threshold=0.3)
    assert p.rule("zip", "categorical").ignore


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[drift.categorical]\nstatistic = 'ks'\n", "'statistic' parameter of [drift.categorical]"),
        ("[drift.categorical]\ntest = 'ks'\n", "'test' parameter"),
        ("[drift]\nsample_size = 3\n", "'sample_size' parameter of [drift] must be an int"),
        ("[features.age]\nmin_effect = -1\n", "'min_effect'"),
        ("[notify]\nx = 1\n", "unknown key(s) ['notify']"),
        ("[drift.numeric]\nmin_effect = 'high'\n", "'min_effect' parameter"),
        ("[features.age]\nthreshold = 'x'\n", "'threshold' parameter"),
        ("[features.age]\nignore = 'no'\n", "'ignore' parameter"),
        ("[drift]\nseed = 'a'\n", "'seed' parameter"),
        ("[quality]\nmax_unseen_share = 'x'\n", "'max_unseen_share' parameter"),
        ("[drift]\nfalse_alarm_rate = 0.0001\n", "'calibration_resamples' parameter"),
        ("[attribution]\nconfidence = 2\n", "'confidence' parameter of [attribution]"),
        ("[attribution]\nsample_size = 1\n", "'sample_size' parameter of [attribution]"),
    ],
)
def test_policy_errors_name_the_key(tmp_path, text, needle):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        p = Policy.from_toml(path)
        p.rule("age", "numeric")
    assert needle in info.value.problem


def test_performance_matches_sklearn(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    y = rng.integers(0, 2, 400)
    proba = np.clip(y * 0.6 + rng.random(400) * 0.5, 0.01, 0.99)
    pred = (proba > 0.5).astype(int)
    got = score("classification", y.astype(float), pred, proba, positive="1")
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(metrics.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba))
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, proba))
    # A window where only one class was seen still scores without errors.
    assert score("classification", np.zeros(5), np.zeros(5), np.full(5, 0.2), "1")["f1"] == 0.0
    target = rng.normal(size=100)
    guess = target + rng.normal(0, 0.1, 100)
    reg = score("regression", target, guess)
    assert reg["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(target, guess)))
    assert reg["mae"] == pytest.approx(metrics.mean_absolute_error(target, guess))
    assert reg["r2"] == pytest.approx(metrics.r2_score(target, guess))


def test_a_pipeline_predicts_as_itself_with_its_rows_transformed_once():
    from conftest import fit_model, make_frame

    from controller.inputs.model import predict

    frame = make_frame(500, 3)
    model = fit_model(frame)
    rows = frame[["x1", "x2", "segment", "flag"]]
    found = predict(model, rows)
    np.testing.assert_array_equal(found.values, model.predict(rows))
    np.testing.assert_allclose(found.score, model.predict_proba(rows)[:, 1])
    assert found.positive == str(model.classes_[1])


def test_a_pipeline_subclass_predicts_its_own_way():
    from conftest import fit_model, make_frame
    from sklearn.pipeline import Pipeline

    from controller.inputs.model import predict

    class Strict(Pipeline):
        def predict(self, x):
            return (self.predict_proba(x)[:, 1] > 0.9).astype(int)

    frame = make_frame(500, 3)
    fitted = fit_model(frame)
    model = Strict(fitted.steps)
    rows = frame[["x1", "x2", "segment", "flag"]]
    np.testing.assert_array_equal(predict(model, rows).values, model.predict(rows))
