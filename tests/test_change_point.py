"""The change-point search that starts a challenger's training window: a pure function of a
loss series, checked against series whose changes are known."""

from __future__ import annotations

import numpy as np
import pytest

from controller.loop.retrain import latest_change


def _series(*segments, seed=0):
    """Concatenated Bernoulli segments: (rows, probability of a loss of 1)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([(rng.random(n) < p).astype(float) for n, p in segments])


@pytest.mark.parametrize("seed", range(5))
def test_an_abrupt_change_is_found_where_it_happened(seed):
    loss = _series((3000, 0.05), (1000, 0.5), seed=seed)
    shift = latest_change(loss, level=0.01, seed=seed)
    assert shift.significant and abs(shift.at - 3000) <= 20
    assert shift.before == pytest.approx(0.05, abs=0.02) and shift.after > 0.45
    assert shift.p_value <= 0.01


def test_a_noisy_series_without_a_change_does_not_cut():
    cuts = 0
    for seed in range(20):
        shift = latest_change(_series((4000, 0.2), seed=100 + seed), level=0.01, seed=seed)
        assert shift is not None and shift.p_value > 0
        cuts += shift.significant
    assert cuts <= 1  # the level is 1%: 20 tries, one false cut at the very most


def test_a_continuous_noisy_loss_does_not_cut_either():
    rng = np.random.default_rng(7)
    loss = rng.exponential(0.3, 5000) ** 2  # skewed, like a log loss
    assert not latest_change(loss, level=0.01).significant


def test_of_two_changes_the_latest_is_returned():
    loss = _series((2000, 0.05), (2000, 0.3), (800, 0.6), seed=3)
    shift = latest_change(loss, level=0.01)
    assert shift.significant and abs(shift.at - 4000) <= 30
    assert shift.before == pytest.approx(0.3, abs=0.05)


def test_a_change_is_found_right_after_it_happened():
    """A few hundred rows after an abrupt change are enough to see it."""
    shift = latest_change(_series((12000, 0.02), (300, 0.5), seed=4), level=0.01)
    assert shift.significant and abs(shift.at - 12000) <= 20


def test_long_series_are_searched_in_blocks():
    loss = _series((90_000, 0.1), (10_000, 0.4), seed=5)
    shift = latest_change(loss, level=0.01, max_points=5_000)  # blocks of 20 rows
    assert shift.significant and abs(shift.at - 90_000) <= 40


def test_a_series_too_short_to_split():
    assert latest_change(np.ones(30), level=0.01) is None
