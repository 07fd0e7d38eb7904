"""Performance estimated before labels arrive (CBPE): against oracles, under covariate shift
(where it holds), under concept drift (where it cannot), and through a monitoring cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, changed_concept, fit_model, make_frame
from mlflow.tracking import MlflowClient
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from controller import Policy, assess, build_baseline
from controller.inputs.model import predict
from controller.loop.estimate import NOT_ESTIMATED, estimate_performance
from controller.profiles.baseline import PREDICTION, SCORE
from controller.results.html import render_html
from controller.statistics import estimation, performance
from controller.statistics.estimation import METRICS, Calibration, Ranking

RAW = Calibration.fit("none", [], [])


@pytest.fixture(scope="module")
def fitted():
    """The usual logistic pipeline (well specified for ``make_frame``) and its baseline on
    held-out rows."""
    model = fit_model(make_frame(4000, 0))
    return model, build_baseline(make_frame(4000, 1), model=model, target="y")


def _outputs(model, frame: pd.DataFrame) -> pd.DataFrame:
    found = predict(model, frame[FEATURES])
    return pd.DataFrame({PREDICTION: found.values.astype(str), SCORE: found.score})


def _realised(outputs: pd.DataFrame, y) -> dict[str, float]:
    return performance.score(
        "classification", np.asarray(y), outputs[PREDICTION], outputs[SCORE], "1"
    )


# Oracles ----------------------------------------------------------------------------------


def test_expected_metrics_match_their_definitions_on_calibrated_probabilities(
    global_random_seed,
):
    rng = np.random.default_rng(global_random_seed)
    p = rng.beta(2, 2, 3000)
    said = p > 0.5
    found = estimation.expected(p, said, Ranking.of(p))
    assert found["accuracy"] == pytest.approx(np.mean(np.maximum(p, 1 - p)), abs=1e-12)
    tp, fp, fn = p[said].sum(), (1 - p[said]).sum(), p[~said].sum()
    assert found["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    # Averaged over labels drawn from p, scikit-learn's realised metrics converge to it.
    draws = rng.random((300, p.size)) < p
    assert np.mean([roc_auc_score(y, p) for y in draws]) == pytest.approx(
        found["roc_auc"], abs=2e-3
    )
    assert np.mean([accuracy_score(y, said) for y in draws]) == pytest.approx(
        found["accuracy"], abs=2e-3
    )
    assert np.mean([f1_score(y, said) for y in draws]) == pytest.approx(found["f1"], abs=2e-3)


def test_expected_roc_auc_with_tied_scores_and_certain_labels():
    # Labels known for sure (p is 0 or 1): the expected curve is the realised one.
    score = np.array([0.9, 0.8, 0.8, 0.4, 0.4, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    found = estimation.expected(y.astype(float), score > 0.5, Ranking.of(score))
    assert found["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert found["accuracy"] == pytest.approx(accuracy_score(y, score > 0.5), abs=1e-12)
    assert found["f1"] == pytest.approx(f1_score(y, score > 0.5), abs=1e-12)


def test_vectorised_realised_metrics_match_scikit_learn(global_random_seed):
    from scipy.stats import rankdata

    rng = np.random.default_rng(global_random_seed)
    score = np.round(rng.random(500), 2)  # ties
    said = score > 0.4
    y = rng.random((5, 500)) < score
    found = estimation.realised(y, said, rankdata(score))
    for i in range(5):
        assert found["roc_auc"][i] == pytest.approx(roc_auc_score(y[i], score), abs=1e-12)
        assert found["accuracy"][i] == pytest.approx(accuracy_score(y[i], said), abs=1e-12)
        assert found["f1"][i] == pytest.approx(f1_score(y[i], said), abs=1e-12)


def test_the_band_covers_realised_values_at_its_nominal_rate(global_random_seed):
    # Calibrated scores, labels drawn from them: only the labels' noise is left.
    rng = np.random.default_rng(global_random_seed)
    score = rng.beta(2, 3, 1000)
    said = score > 0.5
    found = estimation.estimate(RAW, score, said, seed=global_random_seed)
    draws = rng.random((400, score.size)) < score
    for metric in METRICS:
        _, low, high = found[metric]
        real = np.array([
            {"roc_auc": roc_auc_score, "accuracy": accuracy_score, "f1": f1_score}[metric](
                y, score if metric == "roc_auc" else said
            )
            for y in draws
        ])
        inside = np.mean((low <= real) & (real <= high))
        assert 0.9 <= inside <= 0.99, (metric, inside)


def test_calibration_is_kept_only_when_it_lowers_the_brier_score(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-x))).astype(float)
    overconfident = 1 / (1 + np.exp(-4 * x))
    cal = estimation.calibrate(overconfident, y, seed=global_random_seed)
    assert cal.method == "logistic" and cal.brier["logistic"] < cal.brier["none"]
    assert cal.values == pytest.approx([0.25, 0.0], abs=0.1)  # the log-odds were 4x
    # A distortion that no slope of the log-odds undoes needs the isotonic map.
    bent = np.where(x > 0, 0.5 + 0.5 * np.tanh(x), 0.5 + 0.05 * x).clip(0.01, 0.99)
    assert estimation.calibrate(bent, y).method == "isotonic"
    # Calibrated scores gain next to nothing from a fitted map.
    brier = estimation.calibrate(1 / (1 + np.exp(-x)), y).brier
    assert min(brier.values()) > brier["none"] - 1e-3
    # On fresh rows, calibrated on a larger reference, the estimate finds the true
    # accuracy (the calibration's error and the labels' are each about 0.004 here); the raw
    # scores' estimate does not.
    def rows(n):
        x = rng.normal(size=n)
        return 1 / (1 + np.exp(-4 * x)), rng.random(n) < 1 / (1 + np.exp(-x))

    cal = estimation.calibrate(*rows(20_000))
    score, y = rows(20_000)
    truth = accuracy_score(y, score > 0.5)
    ranking = Ranking.of(score)
    assert estimation.expected(cal(score), score > 0.5, ranking)["accuracy"] == pytest.approx(
        truth, abs=0.02
    )
    assert estimation.expected(score, score > 0.5, ranking)["accuracy"] > truth + 0.05


# Covariate shift and concept drift --------------------------------------------------------


def test_under_covariate_shift_the_band_covers_the_realised_performance(fitted):
    model, baseline = fitted
    errors = {m: [] for m in METRICS}
    inside = {m: 0 for m in METRICS}
    for seed in range(20):
        # The inputs move (x1 by 0.7 sd, the segments' shares reversed); P(y | x) does not.
        window = make_frame(2000, 100 + seed, shift=0.7, flip_segment=True)
        outputs = _outputs(model, window)
        found, note = estimate_performance(baseline, outputs, seed)
        assert note is None
        real = _realised(outputs, window.y)
        for m in METRICS:
            value, low, high = found[m]
            errors[m].append(value - real[m])
            inside[m] += low <= real[m] <= high
    for m in METRICS:
        assert inside[m] >= 16, (m, inside[m])  # at least 80% for a nominal 95%
        assert abs(np.mean(errors[m])) < 0.01, (m, np.mean(errors[m]))
    # The shift did move performance, and the estimate followed it.
    moved = _realised(_outputs(model, make_frame(20_000, 7, shift=0.7, flip_segment=True)),
                      make_frame(20_000, 7, shift=0.7, flip_segment=True).y)
    assert abs(moved["accuracy"] - baseline.performance["accuracy"]) > 0.02


def test_under_concept_drift_the_estimate_misses_the_drop(fitted):
    # The documented limitation: the label now follows x2, the inputs are unchanged, so the
    # scores, and the estimate from them, look as at the baseline; only labels tell.
    model, baseline = fitted
    window = changed_concept(3000, 11)
    outputs = _outputs(model, window)
    found, _ = estimate_performance(baseline, outputs)
    real = _realised(outputs, window.y)
    for m in METRICS:
        value, low, _ = found[m]
        assert value == pytest.approx(baseline.performance[m], abs=0.03)
        assert real[m] < low
    assert real["roc_auc"] < baseline.performance["roc_auc"] - 0.1


# In the report and a monitoring cycle -----------------------------------------------------


def test_the_report_shows_the_estimate_beside_the_realised_performance(fitted):
    model, baseline = fitted
    frame = make_frame(1500, 21)
    window = pd.concat([frame[FEATURES], _outputs(model, frame)], axis=1)
    report = assess(baseline, window, Policy(), labels=frame.y)
    assert set(report.estimated) == set(METRICS)
    metrics = report.metrics()
    for m in METRICS:
        value, low, high = report.estimated[m]
        assert low <= value <= high
        assert metrics[f"performance.estimated.{m}"] == value
        assert metrics[f"performance.estimated.{m}.low"] == low
        assert metrics[f"performance.estimated.{m}.high"] == high
        assert f"performance.{m}" in metrics  # the realised value, labels being there
        assert f"performance {m} estimated without labels" in report.render()
    frame = report.to_frame()
    rows = frame[frame.section == "estimated"].set_index("statistic")
    assert rows.loc["roc_auc", "ci_low"] == report.estimated["roc_auc"][1]
    assert rows.loc["roc_auc", "baseline"] == baseline.performance["roc_auc"]
    assert report.to_dict()["estimated"]["f1"]["high"] == report.estimated["f1"][2]
    page = render_html(report, baseline, window)
    assert "<table id=estimated>" in page and f"{report.estimated['f1'][0]:.4f}" in page


def test_regressors_and_baselines_without_labels_get_a_note(fitted):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(500, 2)), columns=["a", "b"])
    frame["t"] = frame.a * 2 + rng.normal(size=500)
    ridge = Ridge().fit(frame[["a", "b"]], frame.t)
    window = frame[["a", "b"]].assign(**{PREDICTION: ridge.predict(frame[["a", "b"]])})
    report = assess(build_baseline(frame, model=ridge, target="t"), window, Policy())
    assert report.estimated == {}
    assert [n for n in report.notes if n.startswith(NOT_ESTIMATED)] == [
        NOT_ESTIMATED + "CBPE needs a classifier's probabilities; direct loss estimation "
        "for regressors is not implemented"
    ]
    model, _ = fitted
    unlabelled = build_baseline(make_frame(1000, 3).drop(columns="y"), model=model)
    window = make_frame(300, 4)
    window = pd.concat([window[FEATURES], _outputs(model, window)], axis=1)
    report = assess(unlabelled, window, Policy())
    assert report.estimated == {} and any("no labels to calibrate" in n for n in report.notes)
    assert not any(k.startswith("performance.estimated") for k in report.metrics())


def test_a_monitoring_cycle_logs_the_estimate(champion):
    from controller.inputs.batches import log_batch
    from controller.loop.cycle import monitor

    log_batch("credit", make_frame(800, 31, shift=0.5).drop(columns="y"))
    report = monitor("credit")
    assert report.n_labelled == 0 and report.performance == {}
    logged = MlflowClient().get_run(report.context["run_id"]).data.metrics
    for m in METRICS:
        value, low, high = report.estimated[m]
        assert logged[f"performance.estimated.{m}"] == pytest.approx(value)
        assert logged[f"performance.estimated.{m}.low"] == pytest.approx(low)
        assert logged[f"performance.estimated.{m}.high"] == pytest.approx(high)
    assert 0.6 < report.estimated["roc_auc"][0] < 1


def test_rows_without_a_score_are_left_out_of_the_estimate(fitted):
    model, baseline = fitted
    outputs = _outputs(model, make_frame(1000, 41))
    partial = outputs.copy()
    partial.loc[::10, [SCORE, PREDICTION]] = np.nan  # a batch the champion did not score
    found, note = estimate_performance(baseline, partial, 0)
    assert found == estimate_performance(baseline, outputs[outputs.index % 10 > 0], 0)[0]
    assert note == (
        "performance estimated on the 900 rows with a score; 100 of the window's 1000 rows "
        "have none and were left out"
    )
    none, why = estimate_performance(baseline, outputs.assign(**{SCORE: np.nan}), 0)
    assert none == {} and why == NOT_ESTIMATED + "the window has no predictions with scores"


def test_a_drop_is_held_against_the_estimate_of_the_labelled_rows(fitted):
    """Measured performance comes from the labelled rows, so the band it is held against
    is the estimate on those rows: 300 of 5,000 rows' band is wider than all rows'."""
    model, baseline = fitted
    frame = changed_concept(5000, 51)
    outputs = _outputs(model, frame)
    labels = frame.y.where(frame.index % 50 < 3)  # 300 labelled rows
    window = pd.concat([frame[FEATURES], outputs], axis=1)
    report = assess(baseline, window, Policy(), labels=labels)
    known = labels.notna().to_numpy()
    assert report.n_labelled == 300
    assert report.estimated_labelled == estimate_performance(baseline, outputs[known], 0)[0]
    auc = report.estimated_labelled["roc_auc"]
    assert auc[2] - auc[1] > 2 * (report.estimated["roc_auc"][2] - report.estimated["roc_auc"][1])
    assert report.performance["roc_auc"] < auc[1]  # the concept changed: below the band
    assert report.performance_bound["roc_auc"] < baseline.performance["roc_auc"]
    assert "estimated_labelled" not in str(report.metrics())
    every = assess(baseline, window.iloc[:1000], Policy(), labels=frame.y.iloc[:1000])
    assert every.estimated_labelled is every.estimated  # the same rows: computed once
    quiet = assess(baseline, window.iloc[:1000], Policy(), labels=make_frame(5000, 51).y[:1000])
    assert quiet.estimated_labelled == {} and quiet.performance_bound == {}  # no drop: no cost


@pytest.mark.slow
def test_under_covariate_shift_the_labelled_rows_stay_within_their_band(fitted):
    """With 300 of 5,000 rows labelled and only the inputs shifted, the measured ROC AUC
    falls below the band of the labelled rows' estimate in few windows."""
    model, baseline = fitted
    below = 0
    for seed in range(20):
        frame = make_frame(5000, 200 + seed, shift=0.7, flip_segment=True)
        outputs = _outputs(model, frame)
        rows = np.random.default_rng(seed).choice(5000, 300, replace=False)
        band, _ = estimate_performance(baseline, outputs.iloc[rows], seed)
        real = _realised(outputs.iloc[rows], frame.y.iloc[rows])
        below += real["roc_auc"] < band["roc_auc"][1]
    assert below <= 3, below
