"""The batched Shapley estimator against independent oracles: the textbook formula, shap's
exact explainer, and its own exact mode; invariants with hypothesis."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from controller.attribution.explain import Explainer, shapley


def _nonlinear(z, rows):
    return np.tanh(z[:, 0] * z[:, 1]) + z[:, 2] ** 2 - 0.5 * z[:, 3] + np.sin(z[:, 4] + z[:, 0])


def _textbook(f, x, background, players):
    """phi_j = sum over S without j of |S|!(p-|S|-1)!/p! [v(S+j) - v(S)], by brute force."""
    p = len(players)

    def v(i, coalition):
        z = background.copy()
        for j in coalition:
            z[:, players[j]] = x[i, players[j]]
        return f(z, np.full(len(z), i)).mean()

    out = np.zeros((len(x), p))
    for i in range(len(x)):
        for j in range(p):
            others = [k for k in range(p) if k != j]
            for size in range(p):
                w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                for s in itertools.combinations(others, size):
                    out[i, j] += w * (v(i, (*s, j)) - v(i, s))
    return out


def _points(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Constant rows and background for the exact-mode tests, drawn once at import from a
    generator of their own, which no test draws from again."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 5)), rng.normal(size=(15, 5))


X, BACKGROUND = _points(0)
SINGLE = [np.array([j]) for j in range(5)]


def test_exact_mode_is_the_textbook_shapley_value():
    ours, how = shapley(_nonlinear, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1))
    assert how == "exact"
    np.testing.assert_allclose(ours, _textbook(_nonlinear, X, BACKGROUND, SINGLE), atol=1e-12)


def test_grouped_players_move_their_columns_together():
    # Columns 0 and 1 form one player: the value is the textbook one for three players.
    players = [np.array([0, 1]), np.array([2]), np.array([3, 4])]
    ours, _ = shapley(_nonlinear, X, BACKGROUND, players, rng=np.random.default_rng(1))
    np.testing.assert_allclose(ours, _textbook(_nonlinear, X, BACKGROUND, players), atol=1e-12)


@pytest.mark.slow  # shap compiles its masker's code first
def test_exact_mode_agrees_with_shaps_exact_explainer():
    shap = pytest.importorskip("shap")
    masker = shap.maskers.Independent(BACKGROUND, max_samples=len(BACKGROUND))
    theirs = shap.explainers.Exact(lambda z: _nonlinear(z, None), masker)(X).values
    ours, _ = shapley(_nonlinear, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1))
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_sampled_mode_agrees_with_the_exact_values():
    # Tied to one draw, hence a fixed seed rather than global_random_seed: the largest
    # per-cell error bound below fails for some draws (seed 16 of 0-99, for one).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    background = rng.normal(size=(50, 8))
    weights = np.array([3.0, 2.0, 1.5, 1.0, 0.6, 0.3, 0.1, 0.0])

    def f(z, rows):
        return np.tanh(z @ weights / 2) + 0.3 * z[:, 0] * z[:, 1]

    players = [np.array([j]) for j in range(8)]
    exact, _ = shapley(f, x, background, players, rng=np.random.default_rng(2))
    sampled, how = shapley(f, x, background, players, rng=np.random.default_rng(2),
                           exact_players=0)
    assert how == "sampled"
    # Per row and feature the estimate is close (largest error an eighth of the largest
    # value, mean error under 1%); the features' mean |value| and their ranking agree.
    scale = np.abs(exact).max()
    assert np.abs(sampled - exact).max() < 0.2 * scale
    assert np.abs(sampled - exact).mean() < 0.01 * scale
    np.testing.assert_allclose(np.abs(sampled).mean(axis=0), np.abs(exact).mean(axis=0),
                               atol=0.01 * scale)
    rho = spearmanr(np.abs(exact).mean(axis=0), np.abs(sampled).mean(axis=0)).statistic
    assert rho > 0.97
    # More permutations, smaller error: it converges to the exact values.
    more, _ = shapley(f, x, background, players, rng=np.random.default_rng(2),
                      exact_players=0, permutations=10)
    assert np.abs(more - exact).mean() < np.abs(sampled - exact).mean()
    # Both add up to the same totals, row by row.
    np.testing.assert_allclose(sampled.sum(axis=1), exact.sum(axis=1), atol=1e-10)


def test_pairing_rows_with_a_few_background_rows_keeps_the_mean_over_rows():
    # What loss attribution reports is the mean over rows; pairing each row with 10 of the
    # 100 background rows moves it by much less than its own sampling error over rows.
    rng = np.random.default_rng(4)
    x, background = rng.normal(size=(100, 6)), rng.normal(size=(100, 6))

    def f(z, rows):
        return np.log1p(np.exp(z @ np.array([2.0, -1.0, 0.5, 0.0, 1.0, 0.2]))) + z[:, 0] * z[:, 4]

    players = [np.array([j]) for j in range(6)]
    full, _ = shapley(f, x, background, players, rng=rng)
    paired, _ = shapley(f, x, background, players, rng=rng, per_row=10)
    boot = rng.integers(0, 100, (500, 100))
    error_over_rows = np.array([full[i].mean(axis=0) for i in boot]).std(axis=0)
    assert np.all(np.abs(paired.mean(axis=0) - full.mean(axis=0)) < error_over_rows + 1e-12)
    assert not np.allclose(paired, full)  # per row, it is a different (noisier) estimate


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_players=st.integers(1, 7),
    exact=st.booleans(),
)
def test_values_add_up_and_an_ignored_feature_gets_nothing(seed, n_players, exact):
    rng = np.random.default_rng(seed)
    d = n_players + 1  # the last column is ignored by the model
    x, background = rng.normal(size=(4, d)), rng.normal(size=(7, d))
    w = rng.normal(size=d - 1)

    def f(z, rows):
        return np.sin(z[:, :-1] @ w) + (z[:, 0] ** 2 if d > 2 else 0.0)

    players = [np.array([j]) for j in range(d)]
    phi, _ = shapley(f, x, background, players, rng=rng, exact_players=8 if exact else 0)
    full = f(x, None)
    none = f(background, None).mean()
    np.testing.assert_allclose(phi.sum(axis=1), full - none, atol=1e-9)
    np.testing.assert_allclose(phi[:, -1], 0.0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_symmetric_features_get_equal_values(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, 3))
    x[:, 1] = x[:, 0]
    background = rng.normal(size=(6, 3))
    background[:, 1] = background[:, 0]

    def f(z, rows):
        return np.exp(-(z[:, 0] + z[:, 1]) ** 2) + z[:, 2]

    phi, _ = shapley(f, x, background, [np.array([j]) for j in range(3)], rng=rng)
    np.testing.assert_allclose(phi[:, 0], phi[:, 1], atol=1e-12)


def test_the_loss_of_a_pipeline_is_explained_per_input_feature():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame({"a": rng.normal(size=n), "seg": rng.choice(list("uvwxyz"), n),
                          "noise": rng.normal(size=n)})
    y = (frame.a + (frame.seg == "u") * 2 + rng.normal(0, 0.5, n) > 0.5).astype(int)
    model = Pipeline([
        ("prep", ColumnTransformer([("oh", OneHotEncoder(), ["seg"])], remainder="passthrough")),
        ("clf", GradientBoostingClassifier(n_estimators=50, random_state=0)),
    ]).fit(frame, y)
    e = Explainer(model, frame.iloc[:80], seed=0, per_row=80)
    rows, labels = frame.iloc[1000:1100], y.iloc[1000:1100]
    a = e.explain_loss(rows, labels)
    # Three players (a, seg's six one-hot columns as one, noise): enumerated exactly.
    assert a.explainer == "exact" and a.values.shape == (100, 3)
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(a.output, -np.log(np.where(labels == 1, p, 1 - p)), rtol=1e-9)
    # The oracle: the textbook formula on the preprocessed columns, seg's columns together.
    x, bg = e._transform(rows), e.background

    def loss(z, idx):
        q = np.clip(model[-1].predict_proba(z)[:, 1], 1e-15, 1 - 1e-15)
        return -np.log(np.where(labels.to_numpy()[idx] == 1, q, 1 - q))

    names = list(model[:-1].get_feature_names_out())
    players = [np.array([names.index("remainder__a")]),
               np.array([i for i, s in enumerate(names) if s.startswith("oh__")]),
               np.array([names.index("remainder__noise")])]
    np.testing.assert_allclose(a.values[:5], _textbook(loss, x[:5], bg, players), atol=1e-9)
    mean_abs = np.abs(a.values).mean(axis=0)
    assert mean_abs[2] < mean_abs[0] and mean_abs[2] < mean_abs[1]


def test_pairing_moves_a_models_attribution_shares_far_less_than_an_alert_needs():
    # An MLP over 12 features explained both ways: every feature's share of mean |SHAP|
    # moves by much less than the 0.05 an attribution alert needs.
    from sklearn.neural_network import MLPRegressor

    from controller.statistics.stats import shares

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(2000, 12)), columns=[f"f{i}" for i in range(12)])
    y = frame.to_numpy() @ np.linspace(2, 0, 12) + np.tanh(frame.f0 * frame.f1)
    model = MLPRegressor(hidden_layer_sizes=(16,), max_iter=2000, random_state=0).fit(frame, y)
    rows = frame.iloc[1000:1200]
    full = Explainer(model, frame.iloc[:100], seed=0).explain(rows)
    paired = Explainer(model, frame.iloc[:100], seed=0, per_row=10).explain(rows)
    assert full.explainer == paired.explainer == "sampled"
    moved = np.abs(shares(paired.mean_abs()) - shares(full.mean_abs()))
    assert moved.max() < 0.01, moved
    np.testing.assert_allclose(paired.output, full.output)


def test_a_pipeline_whose_columns_mix_features_is_mapped_back_whatever_its_width():
    # PCA makes every output column a mix of every input: its three components' values are
    # shared out equally, never reported as if they were the three features.
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(6)
    frame = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    model = make_pipeline(PCA(n_components=3), KNeighborsRegressor()).fit(
        frame, frame.a + frame.b * frame.c)
    a = Explainer(model, frame.iloc[:40], seed=0).explain(frame.iloc[100:110])
    np.testing.assert_allclose(a.values[:, 0], a.values[:, 1])
    np.testing.assert_allclose(a.values[:, 1], a.values[:, 2])
    np.testing.assert_allclose(a.values.sum(axis=1) + a.expected, a.output)


def test_blocks_of_model_calls_do_not_change_the_values(monkeypatch):
    import controller.attribution.explain as attribution

    calls = []

    def f(z, rows):
        calls.append(len(z))
        return _nonlinear(z, rows)

    whole, _ = shapley(f, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1))
    monkeypatch.setattr(attribution, "BATCH_CELLS", 4 * 15 * 5)  # four rows' worth a call
    calls.clear()
    blocked, _ = shapley(f, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1))
    # rows 0-3 one coalition a call, then rows 4-5 two coalitions a call
    assert max(calls) == 4 * 15 and len(calls) == 2**5 + 2**4
    np.testing.assert_allclose(blocked, whole, atol=1e-12)
    sampled, _ = shapley(f, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1), per_row=4,
                         exact_players=0)
    monkeypatch.setattr(attribution, "BATCH_CELLS", 10**9)
    again, _ = shapley(f, X, BACKGROUND, SINGLE, rng=np.random.default_rng(1), per_row=4,
                       exact_players=0)
    np.testing.assert_allclose(sampled, again, atol=1e-12)


def test_float_labels_are_the_classes_they_write():
    # Labels read back as floats (1.0, 0.0) are the classes 1 and 0, not strangers to both.
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(500, 2)), columns=["a", "b"])
    y = (frame.a > 0).astype(int)
    model = KNeighborsClassifier(10).fit(frame, y)
    e = Explainer(model, frame.iloc[:30], seed=0)
    as_int = e.explain_loss(frame.iloc[200:240], y.iloc[200:240])
    as_float = e.explain_loss(frame.iloc[200:240], y.iloc[200:240].astype(float))
    np.testing.assert_allclose(as_float.output, as_int.output)
    assert as_int.output.mean() < 1.0
