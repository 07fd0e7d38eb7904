"""Drift no single feature shows: a relation between features changes, every marginal stays."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, runs_of

from controller.loop.assess import assess
from controller.loop.decide import reasons
from controller.policy import Multivariate, Policy, Retrain
from controller.profiles.build import build_baseline
from controller.results.html import render_html
from controller.statistics.multivariate import METHODS, detect

KINDS = {"x1": "numeric", "x2": "numeric", "x3": "numeric", "segment": "categorical",
         "flag": "boolean"}


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    """x1 and x2 standard normal with correlation ``rho``; x3, segment and flag independent
    of them. Changing ``rho`` leaves every marginal as it was."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return pd.DataFrame({
        "x1": z[:, 0],
        "x2": rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1],
        "x3": rng.normal(size=n),
        "segment": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]),
        "flag": rng.random(n) < 0.3,
    })


def by_method(found) -> dict:
    return {m.method: m for m in found}


def test_a_flipped_correlation_is_drift_no_feature_shows(global_random_seed):
    seed = global_random_seed
    baseline = build_baseline(correlated(4000, 0.8, seed))
    policy = Policy(seed=seed)

    quiet = assess(baseline, correlated(3000, 0.8, seed + 1), policy)
    assert quiet.verdict == "ok" and not quiet.multivariate_drifted
    assert [m.method for m in quiet.multivariate] == list(METHODS)
    # A quiet window logs no importance (its top features change every cycle), and its
    # expected false alarms count the detectors' with the features'.
    assert not any(".importance." in k for k in quiet.metrics())
    rates = [f.false_alarm_rate for f in quiet.features]
    rates += [m.false_alarm_rate for m in quiet.multivariate]
    assert quiet.expected_false_alarms == pytest.approx(sum(rates))
    assert quiet.multivariate[1].false_alarm_rate > 0

    report = assess(baseline, correlated(3000, -0.8, seed + 2), policy)
    assert report.drifted == [] and report.prediction is None
    found = by_method(report.multivariate)
    assert set(report.multivariate_drifted) == set(METHODS)
    pca, clf = found["pca_reconstruction"], found["domain_classifier"]
    assert pca.value > pca.threshold >= pca.baseline * 1.05
    assert clf.value > 0.7 and clf.threshold == 0.55 and clf.threshold_source == "min_effect"
    assert set(list(clf.importance)[:2]) == {"x1", "x2"}
    assert min(list(clf.importance.values())[:2]) > 0.1
    assert report.drift and report.verdict == "drift"

    why = reasons(report, None, Retrain())
    assert len(why) == 2 and all(w.startswith("multivariate drift") for w in why)
    assert "x1" in why[1] and "x2" in why[1]

    metrics = report.metrics()
    for method in METHODS:
        for part in ("value", "threshold", "verdict"):
            assert f"multivariate.{method}.{part}" in metrics
        assert metrics[f"multivariate.{method}.verdict"] == 1
    assert metrics["multivariate.domain_classifier.importance.x1"] > 0.1
    frame = report.to_frame()
    rows = frame[frame.section == "multivariate"]
    assert set(rows.statistic) >= set(METHODS)
    assert rows[rows.statistic == "domain_classifier"].alert.all()
    assert set(rows[rows.statistic == "domain_classifier.importance"].feature) >= {"x1", "x2"}
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["verdict"] == "drift"
    assert summary["multivariate_drifted"] == list(METHODS)
    text = report.render()
    assert "multivariate domain_classifier" in text and "multivariate drift:" in text
    page = render_html(report, baseline, correlated(100, -0.8, 0))
    assert "id=multivariate" in page and "multivariate drift" in page


def test_quiet_windows_alarm_at_about_the_policy_rate(global_random_seed):
    """Thresholds calibrated alone (no minimum effect), at a 5% false-alarm rate: over 40
    windows without drift, each detector alarms at most 8 times (for a true rate of 5%,
    more happens with probability under 0.4%). The PCA detector measures its own rate;
    the domain classifier's is nominal (the setting, by construction), so not tested."""
    limits = Multivariate(min_auc=0.5, min_error_increase=0.0, classifier_rows=300)
    alarms = dict.fromkeys(METHODS, 0)
    expected = dict.fromkeys(METHODS, 0.0)
    for i in range(40):
        seed = global_random_seed * 1000 + i
        reference, window = correlated(1000, 0.8, seed), correlated(300, 0.8, seed + 500)
        for m in detect(reference, window, KINDS, limits, 0.05, 500, seed):
            alarms[m.method] += m.drifted
            expected[m.method] += m.false_alarm_rate
            assert m.threshold_source == "calibrated"
    assert max(alarms.values()) <= 8, alarms
    # The PCA detector's own estimate of its rate is about the policy's.
    assert 0.02 <= expected["pca_reconstruction"] / 40 <= 0.08, expected


def test_a_changed_interaction_of_categories(global_random_seed):
    """Two categorical features whose pairing changes while their shares stay."""
    rng = np.random.default_rng(global_random_seed)

    def paired(n, step):
        a = rng.integers(0, 3, n)
        b = np.where(rng.random(n) < 0.8, (a + step) % 3, rng.integers(0, 3, n))
        return pd.DataFrame({"a": np.array(list("pqr"))[a], "b": np.array(list("pqr"))[b],
                             "x": rng.normal(size=n)})

    kinds = {"a": "categorical", "b": "categorical", "x": "numeric"}
    found = by_method(detect(paired(3000, 0), paired(2000, 1), kinds, Multivariate(), 0.01, 500, 0))
    assert found["domain_classifier"].drifted and found["pca_reconstruction"].drifted
    assert set(list(found["domain_classifier"].importance)[:2]) == {"a", "b"}
    same = by_method(detect(paired(3000, 0), paired(2000, 0), kinds, Multivariate(), 0.01, 500, 0))
    assert not any(m.drifted for m in same.values())


def test_small_windows_disabled_detectors_and_one_feature():
    reference = correlated(500, 0.8, 0)
    few = by_method(detect(reference, correlated(10, -0.8, 1), KINDS, Multivariate(), 0.01, 500, 0))
    assert not any(m.drifted for m in few.values())
    assert all(np.isnan(m.value) and m.notes for m in few.values())
    assert detect(reference, reference, {"x1": "numeric"}, Multivariate(), 0.01, 500, 0) == ()
    baseline = build_baseline(reference)
    report = assess(baseline, correlated(400, -0.8, 1),
                    Policy(multivariate=Multivariate(enabled=False)))
    assert report.multivariate == () and not any(k.startswith("multivariate")
                                                  for k in report.metrics())
    ignored = Policy(features={"x1": {"ignore": True}})
    report = assess(baseline, correlated(400, -0.8, 1), ignored)
    assert not report.multivariate_drifted  # x2's partner is left out


def test_missing_values_and_unseen_categories_are_encoded():
    reference = correlated(800, 0.8, 0)
    window = correlated(400, 0.8, 1)
    reference.loc[::7, "x1"] = np.nan
    reference.loc[::5, "segment"] = None
    window.loc[::3, "segment"] = "new"
    found = by_method(detect(reference, window, KINDS, Multivariate(), 0.01, 500, 0))
    assert all(np.isfinite(m.value) for m in found.values())
    assert found["domain_classifier"].drifted  # a third of the rows in an unseen category
    assert next(iter(found["domain_classifier"].importance)) == "segment"


def test_a_column_without_reference_values_is_left_out_of_the_classifier():
    reference, window = correlated(600, 0.8, 0), correlated(400, -0.8, 1)
    reference["x3"] = np.nan
    found = by_method(detect(reference, window, KINDS, Multivariate(), 0.01, 500, 0))
    clf = found["domain_classifier"]
    assert clf.drifted and "x3" not in clf.importance
    assert clf.notes == ("domain_classifier: left out x3: no value in the reference",)
    only = detect(reference, window, {"x3": "numeric", "flag": "boolean"}, Multivariate(),
                  0.01, 500, 0)
    assert not by_method(only)["domain_classifier"].drifted


@pytest.mark.parametrize(
    "section",
    [{"enabled": "yes"}, {"sample_size": 10}, {"classifier_rows": 1.5}, {"pca_variance": 0},
     {"pca_variance": 1.2}, {"min_auc": 0.4}, {"min_auc": 1}, {"min_error_increase": -1},
     {"folds": 5}],
)
def test_the_policy_section_is_validated(section):
    from controller._errors import PolicyError

    with pytest.raises(PolicyError, match=r"multivariate"):
        Policy.from_dict({"multivariate": section})


def test_monitor_logs_the_multivariate_metrics(champion):
    from controller.inputs.batches import log_batch
    from controller.loop.cycle import monitor

    log_batch("credit", make_frame(1500, 11).drop(columns="y"))
    calm = monitor("credit")
    assert calm.verdict == "ok"
    # x2 reordered to rise with x1: each column's values are those of a calm window.
    frame = make_frame(1500, 12).drop(columns="y")
    frame["x2"] = np.sort(frame["x2"].to_numpy())[np.argsort(np.argsort(frame["x1"]))]
    log_batch("credit", frame)
    report = monitor("credit", last=1)
    assert "x1" not in report.drifted and "x2" not in report.drifted
    assert report.multivariate_drifted
    assert report.retrain.called
    assert any(r.startswith("multivariate drift") for r in report.retrain.reasons)
    latest = max(runs_of("credit", "monitor"), key=lambda r: r.info.start_time)
    m = latest.data.metrics
    assert m["multivariate.domain_classifier.verdict"] == 1
    assert m["multivariate.domain_classifier.value"] > 0.6
    assert {"multivariate.domain_classifier.importance.x1",
            "multivariate.domain_classifier.importance.x2"} <= set(m)
    assert "multivariate.pca_reconstruction.threshold" in m


def test_the_readme_documents_the_defaults():
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    reference = readme[readme.index("## Policy file reference"):]
    block = re.search(r"```toml\n(.*?)```", reference, re.S).group(1)
    assert Policy.from_dict(tomllib.loads(block)).multivariate == Multivariate()
    for method in METHODS:
        assert f"`{method}`" in readme
    assert "`multivariate.domain_classifier.importance.<feature>`" in readme
