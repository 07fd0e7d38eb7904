"""Each drift statistic is declared once (controller.statistics.catalog).

Two statistics declared here, and only here, are accepted by the policy, judged, calibrated
and reported: a difference of means on raw values (bootstrap null) and the total variation
distance on bin counts (multinomial null). Expected values come from numpy written out in
the tests, and thresholds from the calibration procedure documented in drift.py, replayed
on the same random stream.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from controller._errors import PolicyError
from controller.loop.assess import assess
from controller.policy import Policy, Rule
from controller.profiles.build import build_baseline
from controller.statistics import catalog, stats
from controller.statistics.drift import judge

N_REFERENCE = 4000
N_WINDOW = 300


def _means(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Means of each column of ``x`` (NaN missing) under row weights ``(r, m)``: ``(r, f)``."""
    present = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(present, x, 0.0)) / (weights @ present)


def _mean_shift(ref, cur, spread):
    once = np.ones((1, len(ref))), np.ones((1, len(cur)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.abs(_means(cur, once[1]) - _means(ref, once[0])) / spread)[0]


def _mean_shift_resampled(x, spread):
    def of_draws(ref, cur):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(_means(x, cur) - _means(x, ref)) / spread

    return of_draws


def _total_variation(ref, cur):
    return np.abs(stats.shares(ref) - stats.shares(cur)).sum(axis=-1) / 2


MEAN_SHIFT = catalog.Statistic(
    "mean_shift",
    kinds=("numeric",),
    needs="values",
    compute=_mean_shift,
    null="bootstrap",
    resampled=_mean_shift_resampled,
)
TOTAL_VARIATION = catalog.Statistic(
    "total_variation",
    kinds=catalog.KINDS,
    needs="counts",
    compute=_total_variation,
    null="multinomial",
)


@pytest.fixture
def declared():
    """The two statistics above, declared for one test and forgotten after it."""
    try:
        for statistic in (MEAN_SHIFT, TOTAL_VARIATION):
            catalog.declare(statistic)
        yield
    finally:
        for statistic in (MEAN_SHIFT, TOTAL_VARIATION):
            catalog.STATISTICS.pop(statistic.name, None)


def _frame(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.normal(0.0, 2.0, n),
            "color": np.array(list("abcd"))[
                rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.25] * 4)
            ],
            "flag": rng.random(n) < 0.3,
        }
    )


@pytest.fixture(scope="module")
def baseline():
    return build_baseline(_frame(N_REFERENCE, np.random.default_rng(101)))


def _toy_policy(seed: int = 4) -> Policy:
    # min_effect 0: the threshold is the calibrated one, whatever its size.
    return Policy(
        numeric=Rule("mean_shift", "ks", 0.0),
        categorical=Rule("total_variation", "chi2", 0.0),
        seed=seed,
    )


def test_the_policy_accepts_a_declared_statistic_for_its_kinds(declared, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        "[drift.numeric]\nstatistic = 'mean_shift'\n"
        "[drift.boolean]\nstatistic = 'total_variation'\n"
        "[features.color]\nstatistic = 'total_variation'\n"
    )
    policy = Policy.from_toml(path)
    assert policy.rule("x", "numeric").statistic == "mean_shift"
    assert policy.rule("flag", "boolean").statistic == "total_variation"
    assert policy.rule("color", "categorical").statistic == "total_variation"
    # declared for numeric features only
    with pytest.raises(PolicyError, match=r"'statistic' parameter of \[drift.categorical\]"):
        Policy.from_dict({"drift": {"categorical": {"statistic": "mean_shift"}}})
    with pytest.raises(PolicyError, match="for categorical features"):
        Policy.from_dict({"features": {"color": {"statistic": "mean_shift"}}}).rule(
            "color", "categorical"
        )


def test_a_statistic_not_declared_is_rejected():
    """Also shows that the fixture above leaves the catalog as it found it."""
    assert "mean_shift" not in catalog.STATISTICS
    for data in (
        {"drift": {"numeric": {"statistic": "mean_shift"}}},
        {"features": {"x": {"statistic": "mean_shift"}}},
    ):
        with pytest.raises(PolicyError, match="'statistic' parameter"):
            Policy.from_dict(data)


def test_a_declared_statistic_is_judged_and_calibrated(declared, baseline):
    window = _frame(N_WINDOW, np.random.default_rng(102), shift=0.5)
    policy = _toy_policy()
    results = {r.feature: r for r in judge(baseline.features, baseline.reference, window, policy)}
    ref_x = baseline.reference[["x", "y"]].to_numpy(float)
    cur_x = window[["x", "y"]].to_numpy(float)
    spread = np.array([baseline.features["x"].std, baseline.features["y"].std])

    # The calibration replayed: the bootstrap nulls come first from the policy's generator
    # (x and y hold as many values, so one draw of rows serves both), then the multinomial
    # ones, feature by feature. Each null's first half calibrates, its second half checks.
    rng = np.random.default_rng(policy.seed)
    b, m = min(policy.calibration_resamples, 100), len(ref_x)
    null = []
    for ref_w, cur_w in stats.resample_rows(m, m, N_WINDOW, 2 * b, rng):
        for i in range(len(ref_w)):
            ref = np.repeat(ref_x, ref_w[i], axis=0).mean(axis=0)
            cur = np.repeat(ref_x, cur_w[i], axis=0).mean(axis=0)
            null.append(np.abs(cur - ref) / spread)
    null = np.array(null)
    q = 1 - policy.false_alarm_rate
    for j, name in enumerate(("x", "y")):
        r = results[name]
        assert r.statistic == "mean_shift" and r.test == "ks"
        expected = abs(cur_x[:, j].mean() - ref_x[:, j].mean()) / spread[j]
        assert r.value == pytest.approx(expected, rel=1e-9)
        assert r.statistics["mean_shift"] == r.value
        threshold = np.quantile(null[:b, j], q, method="higher")
        assert r.threshold_source == "calibrated"
        assert r.threshold == pytest.approx(threshold, rel=1e-9)
        assert r.false_alarm_rate == np.mean(null[b:, j] > r.threshold)

    color = baseline.features["color"]
    p = stats.shares(np.asarray(color.counts))
    resamples = policy.calibration_resamples
    ref = rng.multinomial(color.count, p, size=2 * resamples)
    cur = rng.multinomial(N_WINDOW, p, size=2 * resamples)
    tv_null = _total_variation(ref, cur)
    r = results["color"]
    shares = window["color"].value_counts(normalize=True).reindex(color.categories, fill_value=0)
    ref_shares = baseline.reference["color"].value_counts(normalize=True)
    # the baseline's counts come from every training row, the reference is a sample of them
    assert len(baseline.reference) == N_REFERENCE
    expected = np.abs(shares.to_numpy() - ref_shares.reindex(color.categories).to_numpy()).sum()
    assert r.value == pytest.approx(expected / 2, rel=1e-9)
    assert r.threshold == pytest.approx(np.quantile(tv_null[:resamples], q, method="higher"))
    assert r.false_alarm_rate == np.mean(tv_null[resamples:] > r.threshold)

    # verdicts: the shifted features drift, the others do not
    assert {n for n, r in results.items() if r.drifted} == {"x", "color"}


def test_a_declared_statistic_is_reported(declared, baseline):
    window = _frame(N_WINDOW, np.random.default_rng(103), shift=0.5)
    report = assess(baseline, window, _toy_policy())
    metrics = report.metrics()
    assert {"drift.mean_shift.x", "drift.mean_shift.y"} <= set(metrics)
    assert {"drift.total_variation.x", "drift.total_variation.color"} <= set(metrics)
    assert "drift.mean_shift.color" not in metrics  # numeric only
    by_name = {f["feature"]: f for f in report.to_dict()["features"]}
    assert by_name["x"]["statistic"] == "mean_shift"
    assert by_name["x"]["statistics"]["mean_shift"] == metrics["drift.mean_shift.x"]
    assert any(line.split()[:2] == ["x", "mean_shift"] for line in report.render().splitlines())


def test_builtin_statistics_in_report_order():
    """The order of each feature's statistics, and so of its JSON keys and metrics."""
    assert catalog.applicable("numeric") == (
        "ks",
        "wasserstein",
        "psi",
        "jensen_shannon",
        "kl",
        "hellinger",
    )
    assert catalog.applicable("categorical") == catalog.applicable("boolean")
    assert catalog.applicable("boolean") == ("chi2", "psi", "jensen_shannon", "kl", "hellinger")
    assert catalog.deciding("categorical") == ("psi", "jensen_shannon", "kl", "hellinger")
    assert catalog.tests("numeric") == ("ks", "chi2")
    assert catalog.tests("boolean") == ("chi2",)


def test_ks_and_wasserstein_columns_share_one_bootstrap_draw(baseline):
    """Columns with as many values are calibrated on the same resamples of rows, whichever
    of the two statistics decides for each: the documented stats.resampled_ks_wasserstein."""
    window = _frame(N_WINDOW, np.random.default_rng(104))[["x", "y"]]
    policy = Policy(numeric=Rule("wasserstein", "ks", 0.0), features={"x": {"statistic": "ks"}})
    results = {r.feature: r for r in judge(baseline.features, baseline.reference, window, policy)}
    b, ref_x = 100, baseline.reference[["x", "y"]].to_numpy(float)
    ks, w = stats.resampled_ks_wasserstein(
        ref_x, len(ref_x), N_WINDOW, 2 * b, np.random.default_rng(policy.seed)
    )
    nulls = {"x": ks[:, 0], "y": w[:, 1] / baseline.features["y"].std}
    for name, null in nulls.items():
        r = results[name]
        assert r.threshold == np.quantile(null[:b], 0.99, method="higher")
        assert r.false_alarm_rate == np.mean(null[b:] > r.threshold)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(kinds=("categorical",)), "only numeric features have raw values"),
        (dict(kinds=("text",)), "kinds must be among"),
        (dict(needs="rows"), "needs must be"),
        (dict(null="permutation"), "null must be None or one of"),
        (dict(resampled=None), "a bootstrap null resamples values"),
        (dict(null="multinomial"), "a multinomial null resamples counts"),
        (dict(test_kinds=("numeric",)), "a test needs a p_value"),
    ],
)
def test_declarations_are_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        replace(MEAN_SHIFT, **changes)


def test_a_name_is_declared_once():
    with pytest.raises(ValueError, match="declared already"):
        catalog.declare(catalog.STATISTICS["psi"])
