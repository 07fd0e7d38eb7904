"""A batch keeps its full rows as a copy, or as a pointer to the file they came from.

Oracle: the same window read from batches that kept a copy. Retraining and the cycles that
read full rows (a window cut through a batch) must see the same rows, and a file that
changed or went away since it was logged must be refused with one clear error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame, register

from controller import tracking
from controller._errors import InputError
from controller.inputs.batches import BATCH_PATH, log_batch
from controller.inputs.source import ENGINE, FINGERPRINT, SOURCE
from controller.loop.cycle import monitor
from controller.loop.window import load_window
from controller.policy import Batches, Policy

FEATURES = ["x1", "x2", "segment", "flag"]
POINTER = Policy(batches=Batches(rows="pointer"))


def batch(n: int, seed: int, start: str, **shift) -> pd.DataFrame:
    frame = make_frame(n, seed, **shift)
    frame.insert(0, "id", [f"{seed}-{i}" for i in range(n)])
    frame["at"] = (
        pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def log(name, data, policy=None) -> str:
    return log_batch(name, data, id_col="id", timestamp_col="at", target="y", policy=policy)


def test_a_pointer_keeps_the_narrow_columns_and_reads_the_rows_back(champion, tmp_path):
    frame = batch(2000, 1, "2026-03-01", shift=0.2)
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    run = tracking.get_run(log(champion, path, POINTER))
    tags = run.data.tags
    assert tags[SOURCE] == str(path.resolve()) and tags[ENGINE] == "pandas"
    assert tags[FINGERPRINT].startswith(f"{path.stat().st_size} bytes")
    kept = tracking.read_table_artifact(run, BATCH_PATH)
    assert not set(FEATURES) & set(kept.columns)
    assert {"id", "at", "y", "__prediction__", "__score__"} <= set(kept.columns)

    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    window = load_window(champion, baseline, last=1)
    pd.testing.assert_frame_equal(
        window.frame[FEATURES], frame[FEATURES], check_dtype=False, check_categorical=False
    )
    assert window.labels.tolist() == frame["y"].tolist()
    assert (window.frame["__prediction__"] == kept["__prediction__"]).all()


def test_a_window_cut_through_a_pointed_batch_agrees_with_a_copy(champion, tmp_path):
    """A cycle that must read a batch's rows (``--since`` cuts it) reads them from the
    file, and finds what it finds in a copy of them."""
    frame = batch(3000, 2, "2026-03-01", shift=0.3)
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    log(champion, path, POINTER)
    since = "2026-03-02T00:00Z"
    pointed = monitor(champion, since=since)
    register("copied")  # the same model and baseline, under another name
    log("copied", frame)
    copied = monitor("copied", since=since)
    assert pointed.n_rows == copied.n_rows == 1560
    assert pointed.drifted == copied.drifted
    for a, b in zip(pointed.features, copied.features, strict=True):
        assert a.statistics == pytest.approx(b.statistics)


def test_auto_copies_small_batches_and_frames(champion, tmp_path):
    frame = batch(500, 3, "2026-03-01")
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    small = Policy(batches=Batches(copy_max_rows=500))
    assert SOURCE not in tracking.get_run(log(champion, path, small)).data.tags
    big = Policy(batches=Batches(copy_max_rows=499))
    assert SOURCE in tracking.get_run(log(champion, path, big)).data.tags
    # a frame has no file to point to
    assert SOURCE not in tracking.get_run(log(champion, frame, POINTER)).data.tags


@pytest.mark.parametrize("change", ["rewritten", "removed"])
def test_a_file_changed_or_gone_since_it_was_logged_is_refused(champion, tmp_path, change):
    frame = batch(800, 4, "2026-03-01")
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    log(champion, path, POINTER)
    if change == "rewritten":
        frame.assign(x1=frame["x1"] + 1).to_csv(path, index=False)
    else:
        path.unlink()
    baseline = tracking.load_baseline(tracking.resolve_version(champion))[0]
    with pytest.raises(InputError) as err:
        load_window(champion, baseline, last=1)
    assert str(path) in str(err.value)
    assert ("changed since they were logged" if change == "rewritten" else "no longer exists") in (
        str(err.value)
    )
