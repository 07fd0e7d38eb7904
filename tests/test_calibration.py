"""Calibration of the drift verdicts (controller.statistics.drift.judge): false alarms and power.

Undrifted windows are fresh draws from the distribution that generated the reference (never
resampled from the reference rows), so they carry the same sampling noise as real production
data. Every bound below comes from the policy (false_alarm_rate, min_effect) and a binomial
allowance, not from earlier output of driftctl.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from controller.policy import Policy, Rule
from controller.profiles.build import build_baseline
from controller.statistics.drift import judge

pytestmark = pytest.mark.slow

CATEGORIES = np.array(["a", "b", "c", "d", "e"])
CATEGORY_P = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
SHIFTED_P = np.array([0.25, 0.25, 0.15, 0.15, 0.20])  # Jensen-Shannon distance ~0.15
FEATURES = ("normal", "lognormal", "count", "color", "flag")
N_REFERENCE = 20_000


def generate(
    n: int,
    rng: np.random.Generator,
    *,
    shift: float = 0.0,
    category_p: np.ndarray = CATEGORY_P,
) -> pd.DataFrame:
    """n rows from the generating distribution; ``shift`` moves the mean of ``normal`` (sd 1)."""
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, n),
            "lognormal": rng.lognormal(0.0, 0.75, n),
            "count": rng.poisson(3.0, n),  # integers, many ties
            "color": CATEGORIES[rng.choice(len(CATEGORIES), n, p=category_p)],
            "flag": rng.random(n) < 0.3,
        }
    )


def binomial_upper(rate: float, trials: int, confidence: float = 0.999) -> float:
    """One-sided upper bound on the share of hits among ``trials`` at ``rate``."""
    return float(ss.binom.ppf(confidence, trials, rate)) / trials


@pytest.fixture(scope="module")
def baseline():
    frame = generate(N_REFERENCE, np.random.default_rng(20240601))
    base = build_baseline(frame)
    kinds = {name: profile.kind for name, profile in base.features.items()}
    assert kinds == {
        "normal": "numeric",
        "lognormal": "numeric",
        "count": "numeric",
        "color": "categorical",
        "flag": "boolean",
    }
    return base


def run_windows(baseline, n: int, windows: int, data_seed: int, **shift) -> pd.DataFrame:
    """Judge ``windows`` independent fresh windows of ``n`` rows; one row per verdict."""
    rng = np.random.default_rng(data_seed)
    rows = []
    for i in range(windows):
        window = generate(n, rng, **shift)
        policy = Policy(seed=i)
        for result in judge(baseline.features, baseline.reference, window, policy):
            rows.append(
                dict(
                    window=i,
                    feature=result.feature,
                    n_current=result.n_current,
                    value=result.value,
                    threshold=result.threshold,
                    source=result.threshold_source,
                    p_value=result.p_value,
                    q_value=result.q_value,
                    false_alarm_rate=result.false_alarm_rate,
                    drifted=result.drifted,
                    min_effect=policy.rule(
                        result.feature, baseline.features[result.feature].kind
                    ).min_effect,
                )
            )
    out = pd.DataFrame(rows)
    assert len(out) == windows * len(FEATURES)
    assert (out["n_current"] == n).all()
    return out


WINDOWS = {30: 200, 300: 200, 30_000: 60}


@pytest.fixture(scope="module")
def undrifted(baseline):
    """Verdicts on undrifted windows, by window size."""
    return {
        n: run_windows(baseline, n, windows, data_seed=1000 + n) for n, windows in WINDOWS.items()
    }


# --------------------------------------------------------------------------------------
# False alarms


@pytest.mark.parametrize("n", sorted(WINDOWS))
def test_false_alarms_stay_within_the_configured_rate(undrifted, n):
    results = undrifted[n]
    rate = Policy().false_alarm_rate
    trials = len(results)
    alarms = int(results["drifted"].sum())
    assert alarms / trials <= rate + (binomial_upper(rate, trials) - rate), (
        f"{alarms} false alarms in {trials} (feature, window) verdicts at n={n}"
    )
    # and no single feature carries them all
    for feature, group in results.groupby("feature"):
        share = group["drifted"].mean()
        assert share <= binomial_upper(rate, len(group)), (feature, share)


@pytest.mark.parametrize("n", sorted(WINDOWS))
def test_calibrated_threshold_alone_holds_the_rate(undrifted, n):
    """Without the significance test, the effect size alone exceeds its threshold in at most
    false_alarm_rate of undrifted windows (plus binomial noise)."""
    results = undrifted[n]
    rate = Policy().false_alarm_rate
    exceed = (results["value"] > results["threshold"]).mean()
    assert exceed <= binomial_upper(rate, len(results)), exceed
    for feature, group in results.groupby("feature"):
        share = (group["value"] > group["threshold"]).mean()
        assert share <= binomial_upper(rate, len(group)), (feature, share)


@pytest.mark.parametrize("n", sorted(WINDOWS))
def test_reported_false_alarm_rate_is_at_most_the_configured_one(undrifted, n):
    results = undrifted[n]
    rate = Policy().false_alarm_rate
    assert results["false_alarm_rate"].between(0.0, 1.0).all()
    for feature, group in results.groupby("feature"):
        # averaged over windows the estimate may exceed the rate only by a little slack
        assert group["false_alarm_rate"].mean() <= rate + 0.005, feature
        # a single estimate is noisy (a share of ``resamples`` draws above a threshold that is
        # itself estimated from as many draws); its median must still sit at the rate
        assert group["false_alarm_rate"].median() <= rate + 0.005, feature


def test_threshold_is_calibrated_at_small_n_and_min_effect_at_large_n(undrifted):
    small, large = undrifted[30], undrifted[30_000]
    assert (small["source"] == "calibrated").all()
    assert (small["threshold"] > small["min_effect"]).all()
    assert (large["source"] == "min_effect").all()
    np.testing.assert_array_equal(large["threshold"], large["min_effect"])
    # the threshold shrinks as the window grows
    for feature in FEATURES:
        by_n = [undrifted[n].loc[undrifted[n]["feature"] == feature, "threshold"] for n in WINDOWS]
        medians = [float(t.median()) for t in by_n]
        assert medians == sorted(medians, reverse=True), (feature, medians)


def test_each_statistic_is_calibrated_at_the_n_it_saw(baseline, global_random_seed):
    """A window read from merged batch profiles holds the counts of all its rows and a
    sample of them: a binned statistic is calibrated at its column's count, a statistic on
    values at the number of values in the sample."""
    rng = np.random.default_rng(global_random_seed)
    full = generate(30_000, rng)
    sample = full.iloc[:3_000]
    counts = {n: p.observe(full[n]) for n, p in baseline.features.items()}
    # No floor under the calibrated thresholds, so that they show the null they come from.
    policy = Policy(
        numeric=Rule("wasserstein", "ks", 0.0),
        categorical=Rule("jensen_shannon", "chi2", 0.0),
        boolean=Rule("jensen_shannon", "chi2", 0.0),
    )
    merged = {
        r.feature: r
        for r in judge(baseline.features, baseline.reference, sample, policy, observed=counts)
    }
    alone = {r.feature: r for r in judge(baseline.features, baseline.reference, sample, policy)}
    for name in FEATURES:
        assert merged[name].n_current == 30_000 and alone[name].n_current == 3_000
    for name in ("normal", "lognormal", "count"):
        # The same bootstrap null: drawn first, at the 3,000 values of the sample.
        assert merged[name].threshold == alone[name].threshold
        assert merged[name].false_alarm_rate == alone[name].false_alarm_rate
    for name in ("color", "flag"):
        # Drawn at 30,000 rows: a Jensen-Shannon null between m reference rows and n window
        # rows scales as sqrt(1 / m + 1 / n).
        m = baseline.features[name].count
        expected = np.sqrt((1 / m + 1 / 3_000) / (1 / m + 1 / 30_000))
        ratio = alone[name].threshold / merged[name].threshold
        assert abs(ratio / expected - 1) < 0.3, (name, ratio, expected)


@pytest.mark.parametrize("n", sorted(WINDOWS))
def test_verdict_needs_both_effect_and_significance(undrifted, n):
    """drifted == effect above threshold and BH q-value within fdr, with the q-values of each
    window equal to scipy's Benjamini-Hochberg over that window's p-values."""
    results = undrifted[n]
    fdr = Policy().fdr
    for _, group in results.groupby("window"):
        np.testing.assert_allclose(
            group["q_value"], ss.false_discovery_control(group["p_value"]), rtol=1e-12
        )
    expected = (results["value"] > results["threshold"]) & (results["q_value"] <= fdr)
    np.testing.assert_array_equal(results["drifted"], expected)


# --------------------------------------------------------------------------------------
# Power


def _untouched_ok(results: pd.DataFrame, shifted: str) -> None:
    rate = Policy().false_alarm_rate
    others = results[results["feature"] != shifted]
    assert others["drifted"].mean() <= binomial_upper(rate, len(others)), (
        others.groupby("feature")["drifted"].mean().to_dict()
    )


def test_mean_shift_of_half_a_standard_deviation_is_caught(baseline):
    results = run_windows(baseline, 1000, 100, data_seed=7, shift=0.5)
    hit = results.loc[results["feature"] == "normal", "drifted"].mean()
    assert hit >= 0.9, hit
    _untouched_ok(results, "normal")


def test_shift_of_category_frequencies_is_caught(baseline):
    results = run_windows(baseline, 1000, 100, data_seed=8, category_p=SHIFTED_P)
    hit = results.loc[results["feature"] == "color", "drifted"].mean()
    assert hit >= 0.9, hit
    _untouched_ok(results, "color")


# --------------------------------------------------------------------------------------
# Large samples: significant is not the same as drifted


@pytest.fixture(scope="module")
def large():
    """A baseline of 200,000 rows, built once from its own fixed seed; tests draw their
    windows from generators of their own."""
    n = 200_000
    base = build_baseline(generate(n, np.random.default_rng(99)), sample_size=n)
    return base, n


@pytest.mark.parametrize(
    "policy",
    [
        Policy(sample_size=200_000),  # KS on every row
        Policy(numeric=Rule("psi", "chi2", 0.1)),  # chi-square on the full bin counts
    ],
    ids=["ks", "chi2"],
)
def test_tiny_real_shift_at_large_n_is_significant_but_not_drift(large, policy):
    base, n = large
    # A fixed seed, not global_random_seed: a shift of 0.02 standard deviations sits close
    # to what 200,000 rows can resolve at p < 1e-4 (a KS test on the full columns misses it
    # for 8 of seeds 0-99), so the test is tied to one draw.
    rng = np.random.default_rng(100)
    window = generate(n, rng, shift=0.02)  # a real shift of 0.02 standard deviations
    results = {r.feature: r for r in judge(base.features, base.reference, window, policy)}
    normal = results["normal"]
    min_effect = policy.rule("normal", "numeric").min_effect
    assert normal.n_current == n
    assert normal.p_value < 1e-4 and normal.q_value <= policy.fdr  # every p-value is tiny
    assert normal.value < min_effect  # but the effect is not worth an alert
    assert normal.threshold_source == "min_effect"
    assert normal.threshold == min_effect
    assert not normal.drifted
    assert not any(r.drifted for r in results.values())

    # the same machinery does flag a shift worth an alert at this n
    window = generate(n, rng, shift=0.5)
    results = {r.feature: r for r in judge(base.features, base.reference, window, policy)}
    assert results["normal"].drifted
    assert not any(r.drifted for name, r in results.items() if name != "normal")


# --------------------------------------------------------------------------------------
# The defaults are sized to a shift of 0.1 standard deviations


SD = {
    "normal": 1.0,
    "lognormal": float(np.sqrt((np.exp(0.75**2) - 1) * np.exp(0.75**2))),
    "count": float(np.sqrt(3.0)),
}
FLAG_P = 0.3


def moved(n: int, rng: np.random.Generator, d: float) -> pd.DataFrame:
    """n fresh rows with every feature moved by ``d`` standard deviations: each numeric
    feature's mean, and the share of category "a" and of True flags by ``d`` standard
    deviations of their 0/1 indicators (the other categories scaled in proportion)."""
    a = CATEGORY_P[0] + d * np.sqrt(CATEGORY_P[0] * (1 - CATEGORY_P[0]))
    category_p = np.concatenate([[a], CATEGORY_P[1:] * (1 - a) / (1 - CATEGORY_P[0])])
    frame = generate(n, rng, category_p=category_p)
    for name, sd in SD.items():
        frame[name] = frame[name] + d * sd
    frame["flag"] = rng.random(n) < FLAG_P + d * np.sqrt(FLAG_P * (1 - FLAG_P))
    return frame


# Each test draws its million-row window from a generator of its own. The first two are
# tied to one draw, hence fixed seeds: their statistics are computed on a sample of the
# window (Policy.sample_size), and the Wasserstein bound of the first fails for some seeds
# (25, 60, 72 and 95 of 0-99), the significance of the second for seed 38.


def test_a_fifth_of_a_standard_deviation_at_a_million_rows_is_drift(baseline):
    window = moved(1_000_000, np.random.default_rng(2026), 0.2)
    policy = Policy()
    results = {r.feature: r for r in judge(baseline.features, baseline.reference, window, policy)}
    assert {n for n, r in results.items() if r.drifted} == set(FEATURES)
    for name in SD:
        r = results[name]
        assert r.statistic == "wasserstein" and r.threshold_source == "min_effect"
        assert r.value == pytest.approx(0.2, abs=0.03)  # normalised Wasserstein = the shift
        # a plain KS test on the full columns flags it too
        assert ss.ks_2samp(baseline.reference[name], window[name]).pvalue < 1e-10
    # PSI on deciles, the deciding statistic before, stays under its usual 0.1
    assert results["normal"].statistics["psi"] < 0.1


def test_a_twentieth_of_a_standard_deviation_is_significant_but_not_drift(baseline):
    window = moved(1_000_000, np.random.default_rng(2027), 0.05)
    results = judge(baseline.features, baseline.reference, window, Policy())
    assert not any(r.drifted for r in results)
    for r in results:
        assert r.value < r.threshold == Policy().rule(r.feature, r.kind).min_effect
        if r.feature in ("normal", "color", "flag"):
            assert r.q_value <= Policy().fdr  # real, and significant at this size


def test_a_change_of_spread_is_drift(baseline, global_random_seed):
    # Holds for any seed (checked for 0-99).
    window = generate(1_000_000, np.random.default_rng(global_random_seed))
    window["normal"] = window["normal"] * 1.3  # W = 0.3 E|Z| = 0.24 sd
    results = {r.feature: r for r in judge(baseline.features, baseline.reference, window, Policy())}
    assert results["normal"].drifted
    assert results["normal"].value == pytest.approx(0.3 * np.sqrt(2 / np.pi), abs=0.03)
    assert not any(r.drifted for name, r in results.items() if name != "normal")
