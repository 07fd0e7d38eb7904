"""When monitoring calls for retraining: reasons, streaks and the cooldown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from conftest import make_frame, runs_of

from controller import Policy, monitor
from controller.inputs.batches import log_batch
from controller.loop.decide import Cycle, decide, reasons
from controller.policy import Retrain
from controller.results.report import Report, RetrainDecision

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def _report(drifted=(), prediction=False, perf=None, base=None, bound=None, labelled=0):
    from controller.statistics.drift import FeatureDrift

    def fd(name, drifted):
        return FeatureDrift(
            name, "numeric", 100, {}, "psi", 0.0, 0.1, "min_effect", "ks", 0.5, 0.5, 0.0, drifted
        )

    return Report(
        n_rows=100,
        features=tuple(fd(n, n in drifted) for n in ("a", "b", "c")),
        prediction=fd("__prediction__", prediction),
        quality=(),
        performance=perf or {},
        baseline_performance=base or {},
        performance_bound=bound or {},
        n_labelled=labelled,
    )


def test_only_drift_that_matters_is_a_reason():
    rules = Retrain()
    shares = {"a": 0.6, "b": 0.01, "c": 0.39}
    assert reasons(_report(drifted=("b",)), shares, rules) == []
    assert reasons(_report(drifted=("a", "b")), shares, rules) == [
        "drift in a (attribution share 0.60)"
    ]
    assert reasons(_report(drifted=("b",)), None, rules) == ["drift in b"]
    assert reasons(_report(prediction=True), shares, rules) == ["drift in the model's predictions"]


def test_a_performance_drop_beyond_the_tolerance_and_the_noise_is_a_reason():
    rules = Retrain(max_performance_drop=0.05)
    small = _report(perf={"roc_auc": 0.88}, base={"roc_auc": 0.90}, bound={"roc_auc": 0.89})
    assert reasons(small, None, rules) == []
    big = _report(perf={"roc_auc": 0.80, "accuracy": 0.5}, base={"roc_auc": 0.90, "accuracy": 0.9},
                  bound={"roc_auc": 0.84}, labelled=400)
    (reason,) = reasons(big, None, rules)
    assert reason.startswith("roc_auc worse by 11.1% than at the baseline")
    assert "on 400 labelled rows" in reason
    worse_rmse = _report(perf={"rmse": 1.2}, base={"rmse": 1.0}, bound={"rmse": 1.1})
    assert reasons(worse_rmse, None, rules)[0].startswith("rmse worse by 20.0%")
    # The same drops, within their sampling noise (or with no bound to tell), are not.
    assert reasons(replace(big, performance_bound={"roc_auc": 0.91}), None, rules) == []
    assert reasons(replace(big, performance_bound={}), None, rules) == []
    assert reasons(replace(worse_rmse, performance_bound={"rmse": 0.99}), None, rules) == []


def _scored(n, rng, shift=0.0):
    """Labels and scores of a classifier whose ROC AUC is about 0.83 (less with ``shift``:
    the scores of part of the positives fall)."""
    y = (rng.random(n) < 0.5).astype(int)
    z = rng.normal(size=n) + 0.67 * (2 * y - 1)
    z = z - shift * y * (rng.random(n) < 0.5)
    return y, 1 / (1 + np.exp(-z))


def _assessed(y, score, base, rules, seed):
    """What ``assess`` reports of ``y`` and ``score`` against the baseline's ``base``."""
    from controller.statistics import performance

    said = (score > 0.5).astype(int)
    perf = performance.score("classification", y, said, score, "1")
    report = _report(perf=perf, base=base, labelled=len(y))
    floor = performance.floor("roc_auc", base["roc_auc"], rules.max_performance_drop)
    if performance.worse("roc_auc", perf["roc_auc"], floor):
        bound = performance.best_case("classification", "roc_auc", y, said, score, "1", seed)
        report = replace(report, performance_bound={"roc_auc": bound})
    return report


def test_a_drop_within_sampling_noise_is_rarely_a_reason(global_random_seed):
    """Without drift, 100 labelled rows put ROC AUC 5% below the baseline's in about one
    window in six; a drop must also be significant at 95%, so at most about 5% of windows
    call for retraining. A real drop over 1,000 rows is found."""
    rng = np.random.default_rng(global_random_seed)
    rules = Retrain(max_performance_drop=0.05)
    y, score = _scored(400_000, rng)
    from sklearn.metrics import roc_auc_score

    base = {"roc_auc": roc_auc_score(y, score)}
    assert 0.8 < base["roc_auc"] < 0.86
    windows = 300
    called = sum(
        bool(reasons(_assessed(*_scored(100, rng), base, rules, i), None, rules))
        for i in range(windows)
    )
    # For a true rate of 5%, more than 26 in 300 happens with probability under 0.5%.
    assert called <= 26, called / windows
    dropped = _assessed(*_scored(1000, rng, shift=2.0), base, rules, 0)
    assert dropped.performance["roc_auc"] < 0.75
    (reason,) = reasons(dropped, None, rules)
    assert "on 1000 labelled rows" in reason
def test_streak_and_cooldown():
    rules = Retrain(consecutive_cycles=2, cooldown_hours=24)
    assert decide([], [], NOW, rules) == RetrainDecision(False, ())
    first = decide(["drift in a"], [Cycle(NOW - timedelta(hours=1), False, False)], NOW, rules)
    assert not first.triggered and first.held_back == "1 of 2 cycles in a row so far"
    second = decide(["drift in a"], [Cycle(NOW - timedelta(hours=1), True, False)], NOW, rules)
    assert second.triggered
    earlier = [Cycle(NOW - timedelta(hours=1), True, True)]
    cooling = decide(["drift in a"], earlier, NOW, rules)
    assert not cooling.triggered and cooling.held_back.startswith("cooling down until")
    assert decide(
        ["drift in a"], [replace(earlier[0], time=NOW - timedelta(hours=25))], NOW, rules
    ).triggered


def test_monitor_records_the_decision_and_its_reasons(champion, capsys):
    log_batch("credit", make_frame(1500, 21, shift=1.2).drop(columns="y"))
    first = monitor("credit")
    assert first.retrain.triggered and "drift in x1" in first.retrain.reasons[0]
    again = monitor("credit")
    assert not again.retrain.triggered and again.retrain.held_back.startswith("cooling down")
    runs = sorted(runs_of("credit", "monitor"), key=lambda r: r.info.start_time)
    assert [r.data.tags["driftctl.retrain"] for r in runs] == ["true", "false"]
    assert runs[1].data.tags["driftctl.retrain_held_back"].startswith("cooling down")
    assert runs[0].data.metrics["retrain.triggered"] == 1.0
    assert "retrain TRIGGERED" in first.render()
    relaxed = monitor("credit", policy=Policy.from_dict({"retrain": {"cooldown_hours": 0}}))
    assert relaxed.retrain.triggered


@pytest.mark.parametrize(
    "text", ["[retrain]\nconsecutive_cycles = 0\n", "[retrain]\ncooldown_hours = 'soon'\n"]
)
def test_retrain_policy_is_checked(tmp_path, text):
    from controller import PolicyError

    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="parameter of \\[retrain\\]"):
        Policy.from_toml(path)


def test_a_model_that_no_longer_loads_still_gets_its_data_monitored(champion):
    import shutil
    from urllib.parse import urlparse

    from mlflow.tracking import MlflowClient

    log_batch("credit", make_frame(800, 22, shift=1.2).drop(columns="y"))
    uri = MlflowClient().get_model_version_download_uri("credit", "1")
    shutil.rmtree(urlparse(uri).path)  # the artifacts are gone, the registry entry is not
    report = monitor("credit")
    assert "x1" in report.drifted and report.attribution is None
    assert any(n.startswith("the model could not be loaded") for n in report.notes)


def _triggered(hours_ago, *, rows, gate="", event_time=True):
    return Cycle(NOW - timedelta(hours=hours_ago), True, True, event_time, rows, gate)


def test_a_failed_challenger_holds_nothing_back_once_new_labels_arrive():
    rules = Retrain(cooldown_hours=24)
    failed = [_triggered(1, rows=1000, gate="failed")]
    assert decide(["drop"], failed, NOW, rules, labelled_rows=1001).triggered
    same_labels = decide(["drop"], failed, NOW, rules, labelled_rows=1000)
    assert not same_labels.triggered and same_labels.held_back.startswith("cooling down until")
    passed = [_triggered(1, rows=1000, gate="passed")]
    assert not decide(["drop"], passed, NOW, rules, labelled_rows=5000).triggered


def test_the_cooldown_can_count_labelled_rows():
    rules = Retrain(cooldown="labelled_rows", cooldown_rows=500)
    earlier = [_triggered(1000, rows=1000, gate="passed")]  # long ago, but few labels since
    few = decide(["drop"], earlier, NOW, rules, labelled_rows=1400)
    assert not few.triggered
    assert few.held_back.startswith("cooling down until 500 new labelled rows") and (
        "(400 so far)" in few.held_back
    )
    assert decide(["drop"], earlier, NOW, rules, labelled_rows=1500).triggered


def test_log_times_are_not_taken_for_event_times():
    """A replay without event times logs its weeks minutes apart: 24 hours of log time never
    pass, so labelled rows end the cooldown; live, the hours of log time still do."""
    rules = Retrain(cooldown_hours=24, cooldown_rows=1000)
    minutes_ago = [_triggered(0.1, rows=1000, event_time=False)]
    held = decide(["drop"], minutes_ago, NOW, rules, event_time=False, labelled_rows=1500)
    assert not held.triggered and "they have no event times" in held.held_back
    assert decide(["drop"], minutes_ago, NOW, rules, event_time=False, labelled_rows=2000).triggered
    day_ago = [_triggered(25, rows=1000, event_time=False)]
    assert decide(["drop"], day_ago, NOW, rules, event_time=False, labelled_rows=1000).triggered
    # With event times, hours are hours, whatever the labels.
    event = [_triggered(1, rows=1000)]
    assert not decide(["drop"], event, NOW, rules, labelled_rows=9000).triggered
    # Cycles logged before labelled rows were counted: hours, as before.
    legacy = [Cycle(NOW - timedelta(hours=1), True, True)]
    assert not decide(["drop"], legacy, NOW, rules, event_time=False, labelled_rows=9000).triggered


@pytest.mark.parametrize(
    "text",
    [
        "[retrain]\ncooldown = 'weeks'\n",
        "[retrain]\ncooldown_rows = 0\n",
        "[retrain]\nmin_rows_after_change = 10\n",
        "[retrain]\nstart_at_change = 1\n",
        "[retrain]\nchange_level = 1.5\n",
        "[retrain]\nreplace_challenger = 'sometimes'\n",
    ],
)
def test_new_retrain_keys_are_checked(tmp_path, text):
    from controller import PolicyError

    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="parameter of \\[retrain\\]"):
        Policy.from_toml(path)
