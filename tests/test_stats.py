"""Every statistic in controller.statistics.stats against an independent oracle (scipy or numpy
written here), plus property tests with hypothesis.

Nothing here compares driftctl with its own earlier output: each expected value comes from
scipy, from a formula written out in the test, or from a published check.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as ss
from scipy.spatial import distance

from controller.statistics import stats

FLOOR = 1e-4
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------
# Oracles written out here (independent of controller.statistics.stats)


def _shares(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return counts / counts.sum()


def _floored_shares(counts, floor: float = FLOOR) -> np.ndarray:
    p = _shares(counts)
    p[p == 0] = floor
    return p


def psi_oracle(ref, cur, floor: float = FLOOR) -> float:
    """PSI = sum (cur - ref) * ln(cur / ref) on shares, zero shares floored (Evidently)."""
    p, q = _floored_shares(ref, floor), _floored_shares(cur, floor)
    total = 0.0
    for pi, qi in zip(p, q, strict=True):
        total += (qi - pi) * np.log(qi / pi)
    return total


def _random_pairs(rng: np.random.Generator, n: int, with_zeros: bool):
    """Pairs of count vectors with positive sums; with or without zero bins."""
    for _ in range(n):
        k = int(rng.integers(2, 12))
        low = 0 if with_zeros else 1
        ref = rng.integers(low, 500, size=k)
        cur = rng.integers(low, 500, size=k)
        if with_zeros:
            ref[rng.integers(k)] = 0
            cur[rng.integers(k)] = 0
            ref[0] = max(ref[0], 1)
            cur[-1] = max(cur[-1], 1)
        yield ref, cur


# --------------------------------------------------------------------------------------
# PSI


def test_psi_matches_evidently_published_categorical_check():
    """Evidently: reference values [3, 2, 2], current [1, 2, 3], as categories -> 2.93."""
    ref_values, cur_values = [3, 2, 2], [1, 2, 3]
    categories = sorted(set(ref_values) | set(cur_values))  # {1, 2, 3}
    ref = np.array([ref_values.count(c) for c in categories])
    cur = np.array([cur_values.count(c) for c in categories])
    assert ref.tolist() == [0, 2, 1] and cur.tolist() == [1, 1, 1]
    assert round(float(stats.psi(ref, cur, floor=1e-4)), 2) == 2.93
    assert float(stats.psi(ref, cur)) == pytest.approx(2.93, abs=0.005)  # default floor


@pytest.mark.parametrize("with_zeros", [False, True])
def test_psi_matches_direct_formula(with_zeros):
    rng = np.random.default_rng(11)
    for ref, cur in _random_pairs(rng, 200, with_zeros):
        assert float(stats.psi(ref, cur)) == pytest.approx(
            psi_oracle(ref, cur), rel=1e-10, abs=1e-14
        )


def test_psi_floor_argument_is_used():
    ref, cur = np.array([0, 5, 5]), np.array([4, 3, 3])
    for floor in (1e-6, 1e-4, 1e-2):
        assert float(stats.psi(ref, cur, floor=floor)) == pytest.approx(
            psi_oracle(ref, cur, floor), rel=1e-12
        )


# --------------------------------------------------------------------------------------
# Jensen-Shannon, KL, Hellinger


def test_jensen_shannon_published_value():
    assert float(stats.jensen_shannon(np.array([1.0, 0.0]), np.array([0.5, 0.5]))) == (
        pytest.approx(0.46450140402245893, rel=1e-14)
    )
    # and the oracle agrees with the published value
    assert distance.jensenshannon([1, 0], [0.5, 0.5]) == pytest.approx(
        0.46450140402245893, rel=1e-14
    )


@pytest.mark.parametrize("with_zeros", [False, True])
def test_jensen_shannon_matches_scipy(with_zeros):
    rng = np.random.default_rng(12)
    for ref, cur in _random_pairs(rng, 200, with_zeros):
        expected = distance.jensenshannon(ref, cur)  # natural log, normalises the inputs
        assert float(stats.jensen_shannon(ref, cur)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_jensen_shannon_is_at_most_sqrt_ln2():
    got = float(stats.jensen_shannon(np.array([5, 0]), np.array([0, 7])))
    assert got == pytest.approx(np.sqrt(np.log(2)), rel=1e-12)
    assert got == pytest.approx(distance.jensenshannon([5, 0], [0, 7]), rel=1e-12)


def test_kl_matches_scipy_entropy_without_empty_bins():
    rng = np.random.default_rng(13)
    for ref, cur in _random_pairs(rng, 200, with_zeros=False):
        expected = ss.entropy(_floored_shares(cur), _floored_shares(ref))  # D(cur || ref)
        assert float(stats.kl_divergence(ref, cur)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_kl_matches_scipy_entropy_with_floored_empty_bins():
    """D(cur || ref) with the 1e-4 floor on zero shares, as scipy.stats.entropy computes it."""
    rng = np.random.default_rng(14)
    for ref, cur in _random_pairs(rng, 200, with_zeros=True):
        expected = ss.entropy(_floored_shares(cur), _floored_shares(ref))
        assert float(stats.kl_divergence(ref, cur)) == pytest.approx(
            expected, rel=1e-9, abs=1e-12
        ), (ref.tolist(), cur.tolist())


def test_kl_is_direction_cur_given_ref():
    ref, cur = np.array([7, 2, 1]), np.array([2, 3, 5])
    forward = ss.entropy(_shares(cur), _shares(ref))
    backward = ss.entropy(_shares(ref), _shares(cur))
    assert forward != pytest.approx(backward)
    assert float(stats.kl_divergence(ref, cur)) == pytest.approx(forward, rel=1e-12)


def test_kl_is_never_negative_when_a_bin_is_empty_in_the_reference():
    """A KL divergence is >= 0 (Gibbs). One value in a bin the reference never saw, in a
    large window, must not give a negative divergence."""
    n = 1_000_000
    ref, cur = np.array([n, n, 0]), np.array([n, n, 1])
    expected = ss.entropy(_floored_shares(cur), _floored_shares(ref))
    got = float(stats.kl_divergence(ref, cur))
    assert got >= 0.0
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("with_zeros", [False, True])
def test_hellinger_matches_scipy_euclidean(with_zeros):
    rng = np.random.default_rng(15)
    for ref, cur in _random_pairs(rng, 200, with_zeros):
        p, q = _shares(ref), _shares(cur)
        expected = distance.euclidean(np.sqrt(p), np.sqrt(q)) / np.sqrt(2)
        assert float(stats.hellinger(ref, cur)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_hellinger_bounds():
    assert float(stats.hellinger(np.array([3, 0]), np.array([0, 9]))) == pytest.approx(1.0)
    assert float(stats.hellinger(np.array([3, 0]), np.array([0, 9]))) == pytest.approx(
        distance.euclidean([1, 0], [0, 1]) / np.sqrt(2)
    )


def test_hellinger_is_zero_on_equal_shares():
    """Same shares, distance 0 (the oracle gives exactly 0 for these)."""
    for ref, cur in (([1, 4, 1], [1, 4, 1]), ([1, 4, 1], [2, 8, 2])):
        p, q = _shares(ref), _shares(cur)
        assert distance.euclidean(np.sqrt(p), np.sqrt(q)) / np.sqrt(2) == 0.0
        assert float(stats.hellinger(np.array(ref), np.array(cur))) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------
# Chi-square


def _chi2_oracle(ref, cur):
    table = np.array([ref, cur], dtype=float)
    keep = table.sum(axis=0) > 0
    res = ss.chi2_contingency(table[:, keep], correction=False)
    return res.statistic, res.pvalue


def test_chi2_matches_scipy_on_random_tables():
    rng = np.random.default_rng(16)
    for ref, cur in _random_pairs(rng, 200, with_zeros=False):
        stat, p = stats.chi2_test(ref, cur)
        res = ss.chi2_contingency(np.array([ref, cur]), correction=False)
        assert float(stat) == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)
        assert float(p) == pytest.approx(res.pvalue, rel=1e-7, abs=1e-300)


def test_chi2_with_a_category_unseen_in_one_row():
    ref = np.array([40, 30, 30, 0])  # the last category never appeared in the reference
    cur = np.array([35, 30, 25, 10])
    stat, p = stats.chi2_test(ref, cur)
    res = ss.chi2_contingency(np.array([ref, cur]), correction=False)
    assert res.dof == 3
    assert float(stat) == pytest.approx(res.statistic, rel=1e-10)
    assert float(p) == pytest.approx(res.pvalue, rel=1e-8)


def test_chi2_drops_bins_empty_in_both_rows_from_the_degrees_of_freedom():
    ref = np.array([5, 0, 3, 0, 7, 0])
    cur = np.array([2, 0, 6, 4, 1, 0])  # columns 1 and 5 are empty in both rows
    stat, p = stats.chi2_test(ref, cur)
    reduced = np.array([[5, 3, 0, 7], [2, 6, 4, 1]])
    res = ss.chi2_contingency(reduced, correction=False)
    assert res.dof == 3
    assert float(stat) == pytest.approx(res.statistic, rel=1e-10)
    assert float(p) == pytest.approx(res.pvalue, rel=1e-8)


def test_chi2_with_zero_columns_on_random_tables():
    rng = np.random.default_rng(17)
    for ref, cur in _random_pairs(rng, 200, with_zeros=True):
        both = rng.integers(len(ref))
        ref, cur = ref.copy(), cur.copy()
        ref[both] = cur[both] = 0
        if ref.sum() == 0 or cur.sum() == 0:
            continue
        stat, p = stats.chi2_test(ref, cur)
        exp_stat, exp_p = _chi2_oracle(ref, cur)
        assert float(stat) == pytest.approx(exp_stat, rel=1e-9, abs=1e-12)
        assert float(p) == pytest.approx(exp_p, rel=1e-7, abs=1e-300)


def test_chi2_single_nonempty_column_has_p_one():
    stat, p = stats.chi2_test(np.array([0, 5, 0]), np.array([0, 9, 0]))
    exp_stat, exp_p = _chi2_oracle([0, 5, 0], [0, 9, 0])
    assert float(stat) == pytest.approx(exp_stat, abs=1e-12)
    assert float(p) == pytest.approx(exp_p)


# --------------------------------------------------------------------------------------
# KS and Wasserstein on exact samples


def _ks_stat(a, b) -> float:
    """scipy's KS statistic (its p-value, not needed here, may warn for tiny samples)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ss.ks_2samp(a, b, method="asymp").statistic


def _col(x) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1, 1)


def _assert_ks_w(a, b):
    ks, w = stats.ks_wasserstein(_col(a), _col(b))
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    a_, b_ = a_[~np.isnan(a_)], b_[~np.isnan(b_)]
    assert float(ks[0]) == pytest.approx(_ks_stat(a_, b_), rel=1e-12, abs=1e-14)
    assert float(w[0]) == pytest.approx(ss.wasserstein_distance(a_, b_), rel=1e-9, abs=1e-12)


def test_wasserstein_published_value():
    _, w = stats.ks_wasserstein(_col([0, 1, 3]), _col([5, 6, 8]))
    assert float(w[0]) == pytest.approx(5.0, rel=1e-14)


def test_ks_wasserstein_continuous_data():
    rng = np.random.default_rng(18)
    for _ in range(100):
        a = rng.normal(size=int(rng.integers(1, 300)))
        b = rng.normal(rng.normal(0, 0.5), rng.uniform(0.5, 2), size=int(rng.integers(1, 300)))
        _assert_ks_w(a, b)


def test_ks_wasserstein_integer_data_with_many_ties():
    rng = np.random.default_rng(19)
    for _ in range(100):
        a = rng.integers(0, 5, size=int(rng.integers(1, 200)))
        b = rng.poisson(rng.uniform(0.5, 3), size=int(rng.integers(1, 200)))
        _assert_ks_w(a, b)
    _assert_ks_w([1, 1, 1, 2, 2], [1, 2, 2, 2, 2, 2])
    _assert_ks_w([0, 0, 0], [0, 0, 0, 0])


def test_ks_wasserstein_ignores_nans():
    rng = np.random.default_rng(20)
    for _ in range(50):
        a = rng.normal(size=100)
        b = rng.integers(-2, 3, size=80).astype(float)
        a[rng.random(100) < 0.3] = np.nan
        b[rng.random(80) < 0.3] = np.nan
        if np.isnan(a).all() or np.isnan(b).all():
            continue
        _assert_ks_w(a, b)


def test_ks_wasserstein_column_by_column_with_nan_padding():
    rng = np.random.default_rng(21)
    ref_lengths, cur_lengths = [50, 10, 37, 1], [12, 60, 37, 5]
    ref_cols = [
        rng.normal(size=ref_lengths[0]),
        rng.integers(0, 3, size=ref_lengths[1]).astype(float),
        rng.lognormal(size=ref_lengths[2]),
        np.array([4.0]),
    ]
    cur_cols = [
        rng.normal(0.3, size=cur_lengths[0]),
        rng.integers(0, 4, size=cur_lengths[1]).astype(float),
        rng.lognormal(0.2, size=cur_lengths[2]),
        rng.normal(4, size=cur_lengths[3]),
    ]
    ref = np.full((max(ref_lengths), 4), np.nan)
    cur = np.full((max(cur_lengths), 4), np.nan)
    for j in range(4):
        ref[: ref_lengths[j], j] = ref_cols[j]
        cur[: cur_lengths[j], j] = cur_cols[j]
    # NaNs scattered in the middle too, not only at the end
    ref[[3, 7], 0] = np.nan
    ks, w = stats.ks_wasserstein(ref, cur)
    assert ks.shape == w.shape == (4,)
    for j in range(4):
        a, b = ref[:, j], cur[:, j]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        assert ks[j] == pytest.approx(_ks_stat(a, b), rel=1e-12)
        assert w[j] == pytest.approx(ss.wasserstein_distance(a, b), rel=1e-9)


def test_ks_wasserstein_empty_column_gives_nan():
    ref = np.array([[1.0, np.nan], [2.0, np.nan]])
    cur = np.array([[1.5, 3.0], [2.5, 4.0], [3.5, np.nan]])
    ks, w = stats.ks_wasserstein(ref, cur)
    assert np.isnan(ks[1]) and np.isnan(w[1])
    assert ks[0] == pytest.approx(_ks_stat([1, 2], [1.5, 2.5, 3.5]))
    assert w[0] == pytest.approx(ss.wasserstein_distance([1, 2], [1.5, 2.5, 3.5]))


def _resampled_oracle(x, n_ref, n_cur, resamples, seed, rows):
    """The same index draws as resampled_ks_wasserstein (``rows`` pairs at a time, reference
    rows then window rows), each pair of resamples scored by scipy."""
    rng = np.random.default_rng(seed)
    m, f = x.shape
    ks, w = np.full((resamples, f), np.nan), np.full((resamples, f), np.nan)
    for start in range(0, resamples, rows):
        r = min(rows, resamples - start)
        ref_idx = rng.integers(0, m, size=(r, n_ref))
        cur_idx = rng.integers(0, m, size=(r, n_cur))
        for i in range(r):
            for j in range(f):
                a, b = x[ref_idx[i], j], x[cur_idx[i], j]
                a, b = a[~np.isnan(a)], b[~np.isnan(b)]
                if a.size and b.size:
                    ks[start + i, j] = _ks_stat(a, b)
                    w[start + i, j] = ss.wasserstein_distance(a, b)
    return ks, w


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "block"),
    [(60, 60, 10_000), (60, 25, 10_000), (60, 140, 10_000), (60, 60, 200), (60, 17, 1)],
    ids=["equal sizes", "smaller window", "larger window", "blocks", "one pair a block"],
)
def test_resampled_ks_wasserstein_is_scipy_on_the_same_resamples(n_ref, n_cur, block):
    rng = np.random.default_rng(22)
    x = np.column_stack(
        [
            rng.normal(size=60),
            rng.integers(0, 4, size=60).astype(float),  # ties
            np.where(rng.random(60) < 0.3, np.nan, rng.lognormal(size=60)),  # missing values
            np.full(60, 2.5),  # one value
        ]
    )
    resamples = 30
    ks, w = stats.resampled_ks_wasserstein(
        x, n_ref, n_cur, resamples, np.random.default_rng(5), block=block
    )
    rows = max(1, min(resamples, block // max(n_ref, n_cur, 60)))
    ks_o, w_o = _resampled_oracle(x, n_ref, n_cur, resamples, 5, rows)
    assert ks.shape == w.shape == (resamples, 4)
    np.testing.assert_allclose(ks, ks_o, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w, w_o, rtol=1e-9, atol=1e-12)


def test_resampled_ks_wasserstein_of_an_empty_column_is_nan():
    x = np.column_stack([np.arange(5.0), np.full(5, np.nan)])
    ks, w = stats.resampled_ks_wasserstein(x, 5, 3, 4, np.random.default_rng(0))
    assert np.isfinite(ks[:, 0]).all() and np.isfinite(w[:, 0]).all()
    assert np.isnan(ks[:, 1]).all() and np.isnan(w[:, 1]).all()


def test_ks_pvalue_matches_scipy_asymptotic():
    rng = np.random.default_rng(22)
    for _ in range(100):
        n_a, n_b = int(rng.integers(2, 400)), int(rng.integers(2, 400))
        a = rng.normal(size=n_a)
        b = rng.normal(rng.normal(0, 0.3), size=n_b)
        if rng.random() < 0.3:
            a, b = np.round(a), np.round(b)
        d, _ = stats.ks_wasserstein(_col(a), _col(b))
        got = stats.ks_pvalue(d, np.array([n_a]), np.array([n_b]))
        expected = ss.ks_2samp(a, b, method="asymp").pvalue
        assert float(got[0]) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_ks_pvalue_vectorised_and_empty_sides():
    d = np.array([0.1, 0.3, 0.05, 0.2])
    n_ref = np.array([100, 20, 5000, 0])
    n_cur = np.array([80, 1000, 300, 10])
    got = stats.ks_pvalue(d, n_ref, n_cur)
    for i in range(3):
        m, n = sorted([float(n_ref[i]), float(n_cur[i])], reverse=True)
        expected = ss.kstwo.sf(d[i], np.round(m * n / (m + n)))
        assert got[i] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(got[3])


# --------------------------------------------------------------------------------------
# Benjamini-Hochberg


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(23)
    for _ in range(100):
        m = int(rng.integers(1, 40))
        p = rng.uniform(size=m) ** rng.uniform(0.5, 4)
        if rng.random() < 0.3:
            p[rng.integers(m, size=m // 2)] = p[0]  # ties
        got = stats.benjamini_hochberg(p)
        np.testing.assert_allclose(got, ss.false_discovery_control(p), rtol=1e-12, atol=0)


def test_benjamini_hochberg_keeps_nans():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.5, 0.0005])
    got = stats.benjamini_hochberg(p)
    ok = ~np.isnan(p)
    assert np.isnan(got[~ok]).all()
    np.testing.assert_allclose(got[ok], ss.false_discovery_control(p[ok]), rtol=1e-12)
    assert np.isnan(stats.benjamini_hochberg(np.array([np.nan, np.nan]))).all()


# --------------------------------------------------------------------------------------
# Vectorisation: a batch of rows equals each row alone


@pytest.mark.parametrize("name", sorted(stats.BINNED))
def test_binned_statistics_vectorise_over_rows(name):
    fn = stats.BINNED[name]
    rng = np.random.default_rng(24)
    ref = rng.integers(0, 50, size=(7, 6))
    cur = rng.integers(0, 50, size=(7, 6))
    ref[:, 0] += 1
    cur[:, 1] += 1
    ref[2, 3] = cur[2, 3] = 0
    batch = fn(ref, cur)
    assert batch.shape == (7,)
    for i in range(7):
        assert batch[i] == pytest.approx(float(fn(ref[i], cur[i])), rel=1e-12, abs=1e-15)
    # and a 3-D batch (features x resamples x bins)
    cube = fn(ref.reshape(7, 1, 6).repeat(3, axis=1), cur.reshape(7, 1, 6).repeat(3, axis=1))
    np.testing.assert_allclose(cube, np.repeat(batch[:, None], 3, axis=1), rtol=1e-12)


def test_chi2_vectorises_over_rows():
    rng = np.random.default_rng(25)
    ref = rng.integers(0, 50, size=(7, 6))
    cur = rng.integers(0, 50, size=(7, 6))
    ref[:, 0] += 1
    ref[2, 3] = cur[2, 3] = 0
    ref[4, 1:] = cur[4, 1:] = 0  # one non-empty column only: dof 0
    stat, p = stats.chi2_test(ref, cur)
    assert stat.shape == p.shape == (7,)
    for i in range(7):
        s_i, p_i = stats.chi2_test(ref[i], cur[i])
        assert stat[i] == pytest.approx(float(s_i), rel=1e-12, abs=1e-15)
        assert p[i] == pytest.approx(float(p_i), rel=1e-12)
        exp_s, exp_p = _chi2_oracle(ref[i], cur[i])
        assert stat[i] == pytest.approx(exp_s, rel=1e-9, abs=1e-12)
        assert p[i] == pytest.approx(exp_p, rel=1e-7, abs=1e-300)


# --------------------------------------------------------------------------------------
# Properties (hypothesis)


def _positive_sum(a: np.ndarray) -> np.ndarray:
    if a.sum() == 0:
        a = a.copy()
        a[0] = 1
    return a


def _count_vector(k: int, max_count: int):
    """Non-negative int counts with a positive sum (an all-zero draw gets a 1 in bin 0)."""
    return hnp.arrays(np.int64, k, elements=st.integers(0, max_count)).map(_positive_sum)


# Pairs of count vectors of the same length; counts up to 10**6 so that large windows with
# a few values in a rare bin are explored too.
count_pairs = st.integers(2, 10).flatmap(
    lambda k: st.tuples(
        _count_vector(k, 10**6) | _count_vector(k, 20),
        _count_vector(k, 10**6) | _count_vector(k, 20),
    )
)
count_vectors = st.integers(2, 10).flatmap(lambda k: _count_vector(k, 10**6) | _count_vector(k, 20))

CHI2_STAT = {"chi2": lambda r, c: stats.chi2_test(r, c)[0]}
ALL_BINNED = {**stats.BINNED, **CHI2_STAT}
SYMMETRIC = ("psi", "jensen_shannon", "hellinger", "chi2")  # kl is not symmetric


@pytest.mark.parametrize("name", sorted(ALL_BINNED))
@SETTINGS
@given(pair=count_pairs)
@example(pair=(np.array([10**6, 10**6, 0]), np.array([10**6, 10**6, 1])))
def test_binned_distance_is_non_negative(name, pair):
    ref, cur = pair
    value = float(ALL_BINNED[name](ref, cur))
    assert np.isfinite(value)
    assert value >= 0.0


@pytest.mark.parametrize("name", sorted(ALL_BINNED))
@SETTINGS
@given(counts=count_vectors)
@example(counts=np.array([1, 4, 1]))
def test_binned_distance_is_zero_on_identical_inputs(name, counts):
    assert abs(float(ALL_BINNED[name](counts, counts.copy()))) <= 1e-12


@pytest.mark.parametrize("name", sorted(stats.BINNED))
@SETTINGS
@given(counts=count_vectors, factor=st.integers(2, 1000))
@example(counts=np.array([1, 4, 1]), factor=2)
def test_share_based_distance_is_zero_on_proportional_counts(name, counts, factor):
    assert abs(float(stats.BINNED[name](counts, factor * counts))) <= 1e-12


@pytest.mark.parametrize("name", SYMMETRIC)
@SETTINGS
@given(pair=count_pairs)
def test_binned_distance_is_symmetric(name, pair):
    ref, cur = pair
    fn = ALL_BINNED[name]
    assert float(fn(ref, cur)) == pytest.approx(float(fn(cur, ref)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(stats.BINNED))
@SETTINGS
@given(pair=count_pairs, factor=st.integers(2, 1000))
def test_share_based_distance_ignores_scale(name, pair, factor):
    ref, cur = pair
    fn = stats.BINNED[name]
    assert float(fn(factor * ref, factor * cur)) == pytest.approx(
        float(fn(ref, cur)), rel=1e-9, abs=1e-12
    )


@SETTINGS
@given(pair=count_pairs)
def test_bounded_statistics_stay_in_range(pair):
    ref, cur = pair
    assert float(stats.jensen_shannon(ref, cur)) <= np.sqrt(np.log(2)) + 1e-12
    assert float(stats.hellinger(ref, cur)) <= 1.0 + 1e-12
    _, p = stats.chi2_test(ref, cur)
    assert 0.0 <= float(p) <= 1.0


_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
_tied = st.integers(-3, 3).map(float)
samples = st.tuples(
    st.integers(1, 60), st.integers(1, 60), st.integers(1, 3), st.booleans()
).flatmap(
    lambda t: st.tuples(
        hnp.arrays(np.float64, (t[0], t[2]), elements=_tied if t[3] else _finite),
        hnp.arrays(np.float64, (t[1], t[2]), elements=_tied if t[3] else _finite),
    )
)


@SETTINGS
@given(pair=samples)
def test_ks_wasserstein_properties(pair):
    ref, cur = pair
    ks, w = stats.ks_wasserstein(ref, cur)
    assert (ks >= 0).all() and (ks <= 1 + 1e-12).all()
    assert (w >= 0).all()
    # symmetric
    ks_b, w_b = stats.ks_wasserstein(cur, ref)
    np.testing.assert_allclose(ks_b, ks, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_b, w, rtol=1e-9, atol=1e-9)
    # zero on identical samples
    ks_0, w_0 = stats.ks_wasserstein(ref, ref.copy())
    assert (np.abs(ks_0) <= 1e-12).all() and (np.abs(w_0) <= 1e-12).all()
    # the oracle, column by column
    for j in range(ref.shape[1]):
        assert ks[j] == pytest.approx(_ks_stat(ref[:, j], cur[:, j]), abs=1e-12)
        assert w[j] == pytest.approx(
            ss.wasserstein_distance(ref[:, j], cur[:, j]), rel=1e-9, abs=1e-6
        )


@SETTINGS
@given(pair=samples, data=st.data())
def test_ks_wasserstein_ignore_row_order(pair, data):
    ref, cur = pair
    perm_ref = data.draw(st.permutations(range(ref.shape[0])))
    perm_cur = data.draw(st.permutations(range(cur.shape[0])))
    ks, w = stats.ks_wasserstein(ref, cur)
    ks_p, w_p = stats.ks_wasserstein(ref[list(perm_ref)], cur[list(perm_cur)])
    np.testing.assert_allclose(ks_p, ks, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_p, w, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(p=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1)))
def test_benjamini_hochberg_properties(p):
    q = stats.benjamini_hochberg(p)
    assert ((q >= p - 1e-15) & (q <= 1.0)).all()
    np.testing.assert_allclose(q, ss.false_discovery_control(p), rtol=1e-12, atol=1e-300)
    order = np.argsort(p, kind="stable")
    assert (np.diff(q[order]) >= -1e-15).all()  # monotone in p
