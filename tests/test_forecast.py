"""The forecast of when to retrain: ETS(A,A,N) against statsmodels itself, crossing times on
generated series, the report's views, the decision's evidence, and real cycles."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import changed_concept, make_frame
from mlflow.tracking import MlflowClient
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from controller import tracking
from controller._errors import PolicyError
from controller.inputs.batches import log_batch
from controller.loop.cycle import monitor
from controller.loop.decide import cite
from controller.policy import Attribution, Multivariate, Policy, Retrain
from controller.results import charts
from controller.results.report import Report, RetrainDecision
from controller.statistics.forecast import MIN_POINTS, forecast

SLOPE, START = -0.004, 0.90
N = 25
AHEAD = 8  # the true line crosses the floor 8 cycles after the last point
FLOOR = START + SLOPE * (N - 1 + AHEAD - 0.5)


def _decline(rng, n=N, sd=0.004):
    return START + SLOPE * np.arange(n) + rng.normal(0, sd, n)


def test_a_linear_decline_crosses_the_floor_near_the_known_cycle(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    f = forecast(_decline(rng), FLOOR, worse_below=True, series="performance")
    assert f.available and f.n_points == N
    assert abs(f.cycles_to_floor - AHEAD) <= 3
    assert f.low <= f.cycles_to_floor <= f.high
    # Over many such series the true crossing lies within the interval nearly always (the
    # interval is of a value, at 90%, so that of its crossing time is wider than 90%).
    found = [forecast(_decline(rng), FLOOR, worse_below=True, series="p") for _ in range(40)]
    inside = sum(x.low <= AHEAD <= x.high for x in found)
    assert inside >= 34, inside
    assert abs(np.median([x.cycles_to_floor for x in found]) - AHEAD) <= 1
    assert "forecast to cross its floor" in f.describe()


def test_a_flat_noisy_series_does_not_cross_within_the_horizon(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    f = forecast(0.85 + rng.normal(0, 0.005, 30), 0.80, worse_below=True, series="performance")
    assert f.available
    assert math.isinf(f.cycles_to_floor) and math.isinf(f.high)
    assert len(f.mean) == 20
    assert "not forecast to cross" in f.describe()
    # A drift share that never moved gives a flat forecast without a fit.
    g = forecast(np.zeros(8), 0.3, worse_below=False, series="drift_share")
    assert g.available and math.isinf(g.cycles_to_floor) and g.mean == (0.0,) * 20


def test_too_few_points_give_no_forecast_and_say_why():
    f = forecast([0.9, 0.88, np.nan, 0.86, 0.84], 0.8, worse_below=True, series="performance")
    assert not f.available and f.n_points == MIN_POINTS - 1
    assert math.isnan(f.cycles_to_floor) and f.mean == ()
    assert "a forecast needs 5" in f.describe()
    report = Report(10, (), None, (), {}, {}, forecasts=(f,))
    assert not any(k.startswith("forecast.") for k in report.metrics())
    assert "forecast: no forecast of performance" in report.render()


def test_a_series_beyond_its_floor_already_crosses_now():
    f = forecast([0.1, 0.2, 0.3, 0.35, 0.4, 0.45], 0.3, worse_below=False, series="drift_share")
    assert (f.cycles_to_floor, f.low, f.high) == (0.0, 0.0, 0.0)
    assert "beyond its floor 0.3 already" in f.describe()


# The oracle may stop its optimiser early, as the forecast does (which says nothing of it).
@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
@pytest.mark.parametrize("worse_below", [True, False])
def test_paths_and_crossings_are_statsmodels_own(global_random_seed, worse_below):
    """The oracle: statsmodels' ETS(A,A,N) fitted to the same series, and its
    ``get_prediction`` at 90%; the crossings are where its columns pass the floor."""
    rng = np.random.default_rng(global_random_seed)
    y = _decline(rng, 60, 0.006) if worse_below else 0.02 + 0.01 * np.arange(12) + rng.normal(
        0, 0.01, 12)
    floor = 0.62 if worse_below else 0.2
    f = forecast(y, floor, worse_below=worse_below, series="s", horizon=15)

    oracle = (
        ETSModel(pd.Series(y), error="add", trend="add")
        .fit(disp=False)
        .get_prediction(start=len(y), end=len(y) + 14)
        .summary_frame(alpha=0.1)
    )
    np.testing.assert_allclose(f.mean, oracle["mean"], rtol=1e-6)
    np.testing.assert_allclose(f.lower, oracle["pi_lower"], rtol=1e-6)
    np.testing.assert_allclose(f.upper, oracle["pi_upper"], rtol=1e-6)

    def first(column) -> float:
        crossed = oracle[column] < floor if worse_below else oracle[column] > floor
        return float(np.argmax(crossed.to_numpy()) + 1) if crossed.any() else math.inf

    pessimistic, optimistic = ("pi_lower", "pi_upper") if worse_below else ("pi_upper", "pi_lower")
    assert (f.cycles_to_floor, f.low, f.high) == (first("mean"), first(pessimistic),
                                                  first(optimistic))
    assert math.isfinite(f.cycles_to_floor)  # both series do cross within the horizon


def test_the_report_carries_the_forecast_in_every_view(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    near = forecast(_decline(rng), FLOOR, worse_below=True, series="performance",
                    measure="roc_auc")
    flat = forecast(np.full(6, 0.1), 0.3, worse_below=False, series="drift_share")
    report = Report(10, (), None, (), {}, {}, weighted_share_drifted=0.1,
                    forecasts=(near, flat))
    metrics = report.metrics()
    assert metrics["forecast.performance.cycles_to_floor"] == near.cycles_to_floor
    assert metrics["forecast.performance.low"] == near.low
    assert metrics["forecast.performance.high"] == near.high
    assert metrics["drift.weighted_share_drifted"] == 0.1
    assert "forecast.drift_share.cycles_to_floor" not in metrics  # inf: not within 20 cycles
    frame = report.to_frame()
    rows = frame[frame.section == "forecast"].set_index("feature")
    assert rows.loc["performance", "value"] == near.cycles_to_floor
    assert rows.loc["performance", "threshold"] == FLOOR
    assert bool(rows.loc["performance", "alert"]) and not bool(rows.loc["drift_share", "alert"])
    assert math.isinf(rows.loc["drift_share", "value"])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["forecasts"][1]["cycles_to_floor"] is None  # inf, as JSON has no infinity
    assert data["forecasts"][0]["description"] == near.describe()
    assert "forecast: performance (roc_auc) forecast to cross" in report.render()


def test_the_decision_cites_a_near_forecast_as_evidence_only():
    rules = Retrain(consecutive_cycles=2)
    soon = forecast([0.4, 0.35, 0.3, 0.25, 0.2, 0.15], 0.1, worse_below=True, series="p")
    assert soon.cycles_to_floor <= 2
    called = RetrainDecision(False, ("drift in x1",), "1 of 2 cycles in a row so far")
    cited = cite(called, (soon,), rules)
    assert not cited.triggered and cited.held_back == called.held_back
    assert cited.reasons[0] == "drift in x1" and cited.reasons[1].startswith("evidence: p ")
    quiet = RetrainDecision(False, ())
    assert cite(quiet, (soon,), rules) == quiet  # a forecast alone calls for nothing
    far = forecast(np.full(6, 0.9), 0.1, worse_below=True, series="p")
    assert cite(called, (far,), rules) == called


def test_the_line_chart_draws_a_forecast_and_stays_backward_compatible():
    old = charts.line("auc per cycle", ["a", "b"], [0.8, 0.79], 0.82, "auc")
    assert "<polygon" not in old and "floor" not in old
    f = forecast(_decline(np.random.default_rng(0)), FLOOR, worse_below=True, series="p")
    svg = charts.line("auc", [str(i) for i in range(N)], list(_decline(np.random.default_rng(0))),
                      0.9, "auc", forecast=(f.mean, f.lower, f.upper), floor=f.floor)
    assert "<polygon" in svg and 'stroke-dasharray="6 4"' in svg and ">floor<" in svg
    assert re.search(r">\+1\d<", svg)  # the axis runs on into the cycles ahead


def test_the_policy_checks_the_forecast_settings():
    assert Policy.from_dict({"retrain": {"forecast_drift_share": 0.5}}).retrain.forecast_drift_share
    with pytest.raises(PolicyError, match="forecast_drift_share"):
        Policy(retrain=Retrain(forecast_drift_share=1.5))
    with pytest.raises(PolicyError, match="forecast_horizon"):
        Policy(retrain=Retrain(forecast_horizon=0))


@pytest.mark.slow
def test_cycles_log_the_forecast_once_enough_exist(champion):
    """Five cycles with labels as the concept changes a little more each week: the first
    four say why there is no forecast, the fifth logs it, as the pure function gives it on
    the history's series."""
    policy = Policy(
        attribution=Attribution(sample_size=50, loss_sample_size=20, background_size=20),
        multivariate=Multivariate(enabled=False),
        retrain=Retrain(max_performance_drop=0.3),
    )
    reports = []
    for week in range(MIN_POINTS):
        frame = make_frame(600, 50 + week)
        changed = changed_concept(600, 60 + week)
        k = int(600 * 0.12 * week)
        frame.loc[: k - 1, "y"] = changed.y.to_numpy()[:k]
        log_batch("credit", frame, target="y")
        reports.append(monitor("credit", last=1, policy=policy))
    for r in reports[:-1]:
        assert [f.why for f in r.forecasts] and all("a forecast needs 5" in f.why
                                                     for f in r.forecasts)
        assert not any(k.startswith("forecast.") for k in r.metrics())
    last = reports[-1]
    perf = next(f for f in last.forecasts if f.series == "performance")
    assert perf.available and perf.n_points == MIN_POINTS and perf.measure == "roc_auc"
    client = MlflowClient()
    logged = client.get_run(last.context["run_id"]).data.metrics
    assert "drift.weighted_share_drifted" in logged
    history = client.get_run(last.context["run_id"]).data.tags[tracking.HISTORY_RUN]
    series = [m.value for m in sorted(client.get_metric_history(history, "performance.roc_auc"),
                                      key=lambda m: m.step)]
    assert len(series) == MIN_POINTS and series[-1] == last.performance["roc_auc"]
    # The history run's headline: the measured primary metric, then its estimate.
    kept = client.get_run(history).data.metrics
    assert kept["headline/performance.roc_auc"] == last.performance["roc_auc"]
    assert kept["headline/performance.roc_auc.estimated"] == last.estimated["roc_auc"][0]
    base = last.baseline_performance["roc_auc"]
    again = forecast(series, base - 0.3 * abs(base), worse_below=True, series="performance")
    assert (perf.cycles_to_floor, perf.low, perf.high) == (again.cycles_to_floor, again.low,
                                                           again.high)
    for key, value in (("cycles_to_floor", again.cycles_to_floor), ("low", again.low),
                       ("high", again.high)):
        if math.isfinite(value):
            assert logged[f"forecast.performance.{key}"] == value
            steps = client.get_metric_history(history, f"forecast.performance.{key}")
            assert [m.step for m in steps] == [MIN_POINTS - 1]  # logged once enough cycles
    assert math.isfinite(again.low)  # the decline crosses by the pessimistic bound at least
    drift = next(f for f in last.forecasts if f.series == "drift_share")
    assert drift.available and drift.floor == 0.3
