"""A monitoring cycle reads its window from the batches' profiles and samples.

Oracle: the same window read as full rows (``load_window``), scored again where another
version scored them, and assessed as today. On a window whose rows all fit in the sample,
every per-feature figure agrees; on a larger clear-cut window, the drifted features do.
Batches whose profile cannot stand for their part of the window (cut by --since, logged
without a profile, profiled against another baseline, scored by another version) are read
in full and profiled on the fly.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register

from controller import tracking
from controller.inputs.batches import (
    BATCH_PATH,
    ID,
    LABEL,
    PROFILE_PATH,
    labels_part,
    log_batch,
    log_labels,
)
from controller.loop.assess import assess
from controller.loop.cycle import _scored_by, monitor
from controller.loop.window import Logged, load_profiled_window, load_window
from controller.policy import Policy

FEATURES = ["x1", "x2", "segment", "flag"]


def batch(n: int, seed: int, start: str, **shift) -> pd.DataFrame:
    frame = make_frame(n, seed, **shift)
    frame.insert(0, "id", [f"{seed}-{i}" for i in range(n)])
    frame["at"] = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    return frame


def log(name: str, frame: pd.DataFrame, *, target: str | None = None) -> str:
    """Log a batch, with its target inline when ``target`` is "y"."""
    if target is None:
        frame = frame.drop(columns="y")
    return log_batch(name, frame, id_col="id", timestamp_col="at", target=target)


def from_full_rows(name: str, policy: Policy, **window):
    """The cycle's figures as computed from the window's full rows."""
    mv = tracking.resolve_version(name)
    baseline, _ = tracking.load_baseline(mv)
    rows = load_window(name, baseline, **window)
    frame = _scored_by(rows.frame, tracking.load_model(mv), mv.version, baseline)
    meta = tuple(c for c in frame.columns if c not in baseline.features)
    return assess(baseline, frame, policy, rows.labels, meta_columns=meta)


def figures(report) -> dict:
    drift = [*report.features, *([report.prediction] if report.prediction else [])]
    return {
        "rows": report.n_rows,
        "features": {
            f.feature: (
                (f.n_current, f.threshold_source, f.drifted),
                f.statistics,
                (f.value, f.p_value, f.q_value, f.threshold, f.false_alarm_rate),
            )
            for f in drift
        },
        "quality": sorted((q.feature, q.check, q.value, q.alert) for q in report.quality),
        "performance": report.performance,
        "labelled": report.n_labelled,
    }


def assert_agree(report, expected) -> None:
    got, want = figures(report), figures(expected)
    assert got.keys() == want.keys()
    for key in ("rows", "labelled"):
        assert got[key] == want[key], key
    assert got["quality"] == want["quality"]  # counts: exactly
    assert got["performance"] == pytest.approx(want["performance"], rel=1e-9)
    assert got["features"].keys() == want["features"].keys()
    for name, (exact, statistics, values) in got["features"].items():
        exact_want, statistics_want, values_want = want["features"][name]
        assert exact == exact_want, name
        assert statistics == pytest.approx(statistics_want, rel=1e-9, nan_ok=True), name
        assert values == pytest.approx(values_want, rel=1e-9, nan_ok=True), name


def local_file(run_id: str, path: str) -> Path:
    uri = tracking.get_run(run_id).info.artifact_uri
    return Path(urlparse(uri).path if uri.startswith("file:") else uri) / path


def test_one_batch_agrees_with_its_full_rows(champion):
    """Up to 10,000 rows the sample holds every row: every figure is the same."""
    frame = batch(6000, 11, "2026-03-01", shift=0.15)
    log(champion, frame, target="y")
    policy = Policy()
    window = load_profiled_window(
        champion, tracking.load_baseline(tracking.resolve_version(champion))[0], "1", last=1
    )
    assert window.rows is None and window.reread == ()
    # Only the narrow columns of the rows are read: no feature.
    assert not set(window.outputs.columns) & set(FEATURES)
    report = monitor(champion, last=1, policy=policy)
    assert report.n_rows == 6000
    assert_agree(report, from_full_rows(champion, policy, last=1))


def test_a_clear_cut_window_larger_than_the_sample_drifts_in_the_same_features(champion):
    """30,000 rows in three batches, 10,000 of them sampled: x1 and segment moved, x2 and
    flag did not, whichever way the window is read."""
    for i in range(3):
        log(champion, batch(10_000, 20 + i, f"2026-03-0{i + 1}", shift=0.5, flip_segment=True))
    report = monitor(champion, last=3)
    expected = from_full_rows(champion, Policy(), last=3)
    assert report.n_rows == expected.n_rows == 30_000
    assert set(report.drifted) == set(expected.drifted) >= {"x1", "segment"}
    assert not {"x2", "flag"} & set(report.drifted)
    # The binned statistics and the quality checks are computed on every row's counts.
    for got, want in zip(report.features, expected.features, strict=True):
        assert got.n_current == want.n_current == 30_000
        assert got.statistics["psi"] == pytest.approx(want.statistics["psi"], rel=1e-12)
    assert figures(report)["quality"] == figures(expected)["quality"]


def test_late_labels_join_the_profiled_rows(champion, tmp_path):
    frame = batch(3000, 31, "2026-03-01")
    log(champion, frame)
    labels = tmp_path / "labels.csv"
    frame[["id", "y"]].iloc[:2000].to_csv(labels, index=False)
    log_labels(champion, labels, id_col="id", target="y")
    report = monitor(champion, last=1)
    assert report.n_labelled == 2000
    assert_agree(report, from_full_rows(champion, Policy(), last=1))


def test_a_window_cutting_through_a_batch_reads_its_rows(champion):
    first = log(champion, batch(3000, 41, "2026-03-01"))
    log(champion, batch(2000, 42, "2026-03-04", shift=0.3))
    since = "2026-03-02T00:00Z"  # the first batch's last 1,560 rows are in the window
    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    window = load_profiled_window(champion, baseline, "1", since=since)
    assert window.reread == (first,) and len(window.rows) == 1560
    report = monitor(champion, since=since)
    assert report.n_rows == 3560
    assert_agree(report, from_full_rows(champion, Policy(), since=since))


def test_a_batch_logged_without_a_profile_is_profiled_on_the_fly(champion):
    old = log(champion, batch(2500, 51, "2026-03-01"), target="y")
    log(champion, batch(2500, 52, "2026-03-02", shift=0.2), target="y")
    local_file(old, PROFILE_PATH).unlink()  # as logged before batches had profiles
    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    assert load_profiled_window(champion, baseline, "1", last=2).reread == (old,)
    report = monitor(champion, last=2)
    assert report.n_rows == 5000
    assert_agree(report, from_full_rows(champion, Policy(), last=2))


def test_rows_another_version_scored_are_scored_again_and_profiled(champion):
    """A batch logged under the champion before a promotion was profiled against another
    baseline and scored by another model: its rows are read, scored and profiled again."""
    before = log(champion, batch(2500, 61, "2026-03-01"), target="y")
    assert register(champion, seed=5) == "2"  # the new champion, with its own baseline
    log(champion, batch(2500, 62, "2026-03-02"), target="y")
    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    window = load_profiled_window(champion, baseline, "2", last=2)
    assert window.reread == (before,)
    report = monitor(champion, last=2)
    assert_agree(report, from_full_rows(champion, Policy(), last=2))


def test_a_batch_of_another_version_with_the_same_baseline_is_scored_again(champion):
    """Tagged as scored by a version other than the one monitored (a challenger's batch,
    say), a batch is read in full even when its profile's bins are the monitored ones."""
    other = log(champion, batch(2000, 71, "2026-03-01"), target="y")
    log(champion, batch(2000, 72, "2026-03-02"), target="y")
    tracking.set_run_tag(other, tracking.VERSION, "9")
    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    window = load_profiled_window(champion, baseline, "1", last=2)
    assert window.reread == (other,)
    assert set(window.rows.columns) >= set(FEATURES)
    report = monitor(champion, last=2)
    assert_agree(report, from_full_rows(champion, Policy(), last=2))


def test_narrow_columns_are_read_by_projection(champion):
    run = tracking.get_run(log(champion, batch(500, 81, "2026-03-01"), target="y"))
    narrow = tracking.read_table_artifact(run, BATCH_PATH, ["__prediction__", "id", "nope"])
    assert list(narrow.columns) == ["__prediction__", "id"]


def test_late_labels_are_matched_to_their_batches_when_logged(champion):
    """Each label is kept under the batch holding its id (the latest, if several do); a
    label no batch holds is kept apart and counted, and joins nothing."""
    first = batch(1000, 91, "2026-03-01")
    second = batch(1000, 92, "2026-03-02")
    second.loc[:99, "id"] = first.loc[:99, "id"].to_numpy()  # ids seen again later
    a, b = log(champion, first), log(champion, second)
    stray = pd.DataFrame({"id": ["nowhere-1", "nowhere-2"], "y": [0, 1]})
    labels = pd.concat([first[["id", "y"]].iloc[:600], second[["id", "y"]].iloc[500:], stray])
    run = tracking.get_run(log_labels(champion, labels, id_col="id", target="y"))
    tags = run.data.tags
    # first's ids 0-99 are second's too: they go to the later batch
    assert tags[f"driftctl.batch.{a}"] == "500"
    assert tags[f"driftctl.batch.{b}"] == "600"
    assert (tags["driftctl.matched_rows"], tags["driftctl.unmatched_rows"]) == ("1100", "2")
    logged = Logged.find(champion)
    assert logged.labelled_rows == 1100
    assert set(logged.labels_for([a])[ID]) == set(first["id"].iloc[100:600])
    assert len(logged.labels_for([a, b])) == 1100


def test_a_cycle_reads_the_labels_of_its_own_batches_only(champion):
    """Labels matched to batches outside the window are never read: removing their files
    changes nothing for a cycle of the last batch."""
    frames = [batch(1000, 100 + i, f"2026-03-0{i + 1}") for i in range(3)]
    runs = [log(champion, f) for f in frames]
    label_runs = [
        log_labels(champion, f[["id", "y"]].iloc[:700], id_col="id", target="y") for f in frames
    ]
    for run, batch_run in zip(label_runs[:2], runs[:2], strict=True):
        local_file(run, labels_part(batch_run)).unlink()
    report = monitor(champion, last=1)
    assert report.n_labelled == 700
    assert report.context["labelled_rows"] == "2100"  # all labels logged so far
    assert_agree(report, from_full_rows(champion, Policy(), last=1))


def test_label_runs_logged_before_matching_still_join(champion, tmp_path):
    """A labels run without per-batch parts, as earlier releases logged it, is joined by
    id, as then."""
    import mlflow

    frame = batch(1000, 111, "2026-03-01")
    log(champion, frame)
    table = tmp_path / "labels.parquet"
    pd.DataFrame({ID: frame["id"].iloc[:400], LABEL: frame["y"].iloc[:400]}).to_parquet(table)
    tags = {"driftctl.kind": "labels", "driftctl.model": champion, "driftctl.rows": "400"}
    with mlflow.start_run(experiment_id=tracking.experiment_id(champion), tags=tags):
        mlflow.log_artifact(str(table), "driftctl")
    report = monitor(champion, last=1)
    assert report.n_labelled == 400
    assert report.context["labelled_rows"] == "400"


def test_labels_logged_before_their_batch_are_found_by_it(champion):
    """Labels that arrive before their batch wait, unmatched; the batch that holds their
    ids finds them when it is logged, and its cycle joins them."""
    frame = batch(1000, 121, "2026-03-01")
    early = log_labels(champion, frame[["id", "y"]].iloc[:300], id_col="id", target="y")
    assert tracking.get_run(early).data.tags["driftctl.unmatched_rows"] == "300"
    run = tracking.get_run(log(champion, frame))
    assert run.data.tags["driftctl.early_labels"] == "300"
    report = monitor(champion, last=1)
    assert report.n_labelled == 300
    assert report.context["labelled_rows"] == "300"  # counted once, by the batch
    later = batch(500, 122, "2026-03-02")  # another batch, without those ids, finds none
    assert "driftctl.early_labels" not in tracking.get_run(log(champion, later)).data.tags
