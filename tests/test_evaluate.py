"""The champion/challenger comparison: metrics against scikit-learn, DeLong, the gate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from controller.statistics.comparison import Threshold, compare, delong, gate, metric

rng = np.random.default_rng(0)
N = 600
Y = rng.integers(0, 2, N)
SCORE = np.clip(0.3 * Y + 0.35 + rng.normal(0, 0.2, N), 0.01, 0.99)
PRED = (SCORE > 0.5).astype(int)
TARGET = rng.normal(size=N)
GUESS = TARGET + rng.normal(0, 0.5, N)


@pytest.mark.parametrize(
    "name, ours, oracle",
    [
        (
            "roc_auc",
            lambda: metric("roc_auc", Y, PRED, SCORE),
            lambda: metrics.roc_auc_score(Y, SCORE),
        ),
        (
            "log_loss",
            lambda: metric("log_loss", Y, PRED, SCORE),
            lambda: metrics.log_loss(Y, SCORE),
        ),
        (
            "accuracy",
            lambda: metric("accuracy", Y, PRED, SCORE),
            lambda: metrics.accuracy_score(Y, PRED),
        ),
        ("f1", lambda: metric("f1", Y, PRED, SCORE), lambda: metrics.f1_score(Y, PRED)),
        (
            "rmse",
            lambda: metric("rmse", TARGET, GUESS, None),
            lambda: np.sqrt(metrics.mean_squared_error(TARGET, GUESS)),
        ),
        (
            "mae",
            lambda: metric("mae", TARGET, GUESS, None),
            lambda: metrics.mean_absolute_error(TARGET, GUESS),
        ),
    ],
)
def test_metrics_match_scikit_learn(name, ours, oracle):
    assert ours() == pytest.approx(oracle(), rel=1e-12)


@pytest.mark.parametrize("name", ["log_loss", "accuracy", "f1"])
def test_bootstrap_rows_are_scored_as_if_one_by_one(name):
    rows = rng.integers(0, N, size=(5, N))
    batch = metric(name, Y, PRED, SCORE, rows)
    one_by_one = [metric(name, Y[r], PRED[r], SCORE[r]) for r in rows]
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-12)


def test_delong_agrees_with_scikit_learn_and_a_bootstrap():
    other = np.clip(SCORE + rng.normal(0, 0.15, N), 0, 1)
    auc_a, auc_b, var = delong(Y, SCORE, other)
    assert auc_a == pytest.approx(metrics.roc_auc_score(Y, SCORE))
    assert auc_b == pytest.approx(metrics.roc_auc_score(Y, other))
    boot = []
    for _ in range(1500):
        r = rng.integers(0, N, N)
        boot.append(metrics.roc_auc_score(Y[r], other[r]) - metrics.roc_auc_score(Y[r], SCORE[r]))
    assert np.sqrt(var) == pytest.approx(np.std(boot), rel=0.15)


def test_identical_models_do_not_pass_and_a_better_one_does():
    same = compare("classification", Y, (PRED, SCORE), (PRED, SCORE))
    assert all(c.improvement == 0 and c.ci_low <= 0 <= c.ci_high for c in same)
    assert not gate(same, Threshold("roc_auc", True), {}).passed
    sharper = np.clip(0.5 * Y + 0.25 + rng.normal(0, 0.1, N), 0.01, 0.99)
    better = compare("classification", Y, (PRED, SCORE), ((sharper > 0.5).astype(int), sharper))
    by = {c.metric: c for c in better}
    assert by["roc_auc"].method == "delong" and by["log_loss"].method == "bootstrap"
    assert by["log_loss"].improvement > 0  # lower loss is an improvement
    decision = gate(better, Threshold("roc_auc", True, min_absolute_change=0.01), {"accuracy": 0.0})
    assert decision.passed, decision.reasons


def test_noise_does_not_pass_and_guardrails_hold():
    shuffled = rng.permutation(SCORE)
    worse = compare("classification", Y, (PRED, SCORE), ((shuffled > 0.5).astype(int), shuffled))
    decision = gate(worse, Threshold("roc_auc", True), {"accuracy": 0.01})
    assert not decision.passed
    assert any(r.startswith("guardrail accuracy") for r in decision.reasons)
    assert Threshold("rmse", False, min_relative_change=0.1).required(2.0) == pytest.approx(0.2)
    reg = compare("regression", TARGET, (GUESS, None), (TARGET + rng.normal(0, 0.2, N), None))
    assert {c.metric for c in reg} == {"rmse", "mae"}
    assert gate(reg, Threshold("rmse", False, min_relative_change=0.1), {"mae": 0}).passed
