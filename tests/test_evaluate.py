"""The champion/challenger comparison: metrics against scikit-learn, DeLong, the gate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from controller.statistics.comparison import Threshold, compare, delong, gate
from controller.statistics.performance import computable, metric, primary

N = 600


class Rows:
    """Labels, scores and predictions of a classifier, and a regression, on the same rows."""

    def __init__(self, rng: np.random.Generator):
        self.y = rng.integers(0, 2, N)
        self.score = np.clip(0.3 * self.y + 0.35 + rng.normal(0, 0.2, N), 0.01, 0.99)
        self.pred = (self.score > 0.5).astype(int)
        self.target = rng.normal(size=N)
        self.guess = self.target + rng.normal(0, 0.5, N)


@pytest.fixture
def rng(global_random_seed) -> np.random.Generator:
    return np.random.default_rng(global_random_seed)


@pytest.fixture
def rows(rng) -> Rows:
    return Rows(rng)


@pytest.mark.parametrize(
    "name, oracle",
    [
        ("roc_auc", lambda d: metrics.roc_auc_score(d.y, d.score)),
        ("log_loss", lambda d: metrics.log_loss(d.y, d.score)),
        ("accuracy", lambda d: metrics.accuracy_score(d.y, d.pred)),
        ("f1", lambda d: metrics.f1_score(d.y, d.pred)),
        ("rmse", lambda d: np.sqrt(metrics.mean_squared_error(d.target, d.guess))),
        ("mae", lambda d: metrics.mean_absolute_error(d.target, d.guess)),
    ],
)
def test_metrics_match_scikit_learn(rows, name, oracle):
    if name in ("rmse", "mae"):
        ours = metric(name, rows.target, rows.guess, None)
    else:
        ours = metric(name, rows.y, rows.pred, rows.score)
    assert ours == pytest.approx(oracle(rows), rel=1e-12)


def test_log_loss_clips_certain_scores_as_scikit_learn_does():
    y, certain = np.array([0, 1, 1, 0]), np.array([0.0, 1.0, 0.0, 0.5])
    assert metric("log_loss", y, None, certain) == pytest.approx(
        metrics.log_loss(y, certain), rel=1e-12
    )


@pytest.mark.parametrize("name", ["log_loss", "accuracy", "f1"])
def test_bootstrap_rows_are_scored_as_if_one_by_one(rows, rng, name):
    y, pred, score = rows.y, rows.pred, rows.score
    resampled = rng.integers(0, N, size=(5, N))
    batch = metric(name, y, pred, score, resampled)
    one_by_one = [metric(name, y[r], pred[r], score[r]) for r in resampled]
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-12)


def test_delong_agrees_with_scikit_learn_and_a_bootstrap(rows, rng):
    y, score = rows.y, rows.score
    other = np.clip(score + rng.normal(0, 0.15, N), 0, 1)
    auc_a, auc_b, var = delong(y, score, other)
    assert auc_a == pytest.approx(metrics.roc_auc_score(y, score))
    assert auc_b == pytest.approx(metrics.roc_auc_score(y, other))
    boot = []
    for _ in range(1500):
        r = rng.integers(0, N, N)
        boot.append(metrics.roc_auc_score(y[r], other[r]) - metrics.roc_auc_score(y[r], score[r]))
    assert np.sqrt(var) == pytest.approx(np.std(boot), rel=0.15)


def test_identical_models_do_not_pass_and_a_better_one_does(rows, rng):
    y, pred, score = rows.y, rows.pred, rows.score
    same = compare("classification", y, (pred, score), (pred, score))
    assert all(c.improvement == 0 and c.ci_low <= 0 <= c.ci_high for c in same)
    assert not gate(same, Threshold("roc_auc", True), {}).passed
    sharper = np.clip(0.5 * y + 0.25 + rng.normal(0, 0.1, N), 0.01, 0.99)
    better = compare("classification", y, (pred, score), ((sharper > 0.5).astype(int), sharper))
    by = {c.metric: c for c in better}
    assert by["roc_auc"].method == "delong" and by["log_loss"].method == "bootstrap"
    assert by["log_loss"].improvement > 0  # lower loss is an improvement
    decision = gate(better, Threshold("roc_auc", True, min_absolute_change=0.01), {"accuracy": 0.0})
    assert decision.passed, decision.reasons


def test_noise_does_not_pass_and_guardrails_hold(rows, rng):
    y, pred, score = rows.y, rows.pred, rows.score
    shuffled = rng.permutation(score)
    worse = compare("classification", y, (pred, score), ((shuffled > 0.5).astype(int), shuffled))
    decision = gate(worse, Threshold("roc_auc", True), {"accuracy": 0.01})
    assert not decision.passed
    assert any(r.startswith("guardrail accuracy") for r in decision.reasons)
    assert Threshold("rmse", False, min_relative_change=0.1).required(2.0) == pytest.approx(0.2)
    target, guess = rows.target, rows.guess
    reg = compare("regression", target, (guess, None), (target + rng.normal(0, 0.2, N), None))
    assert {c.metric for c in reg} == {"rmse", "mae"}
    assert gate(reg, Threshold("rmse", False, min_relative_change=0.1), {"mae": 0}).passed


def test_reports_and_the_gate_lead_with_the_same_metric():
    assert primary(computable("classification", scored=True)) == "roc_auc"
    assert primary(computable("classification", scored=False)) == "accuracy"
    assert primary(computable("regression", scored=False)) == "rmse"
    # A window of one class has no ROC AUC: its report leads with accuracy.
    assert primary({"accuracy": 0.9, "f1": 0.0, "log_loss": 0.3}) == "accuracy"
    assert primary({"f1": 0.5}) is None
