"""Two cycles on one window: the claim lets one log it, the other stands down; a claim
whose command failed is given up, one whose command was killed lapses with its lease.
The race is real: the first cycle is a ``driftctl`` process paused after its claim."""

from __future__ import annotations

import signal
import time

import pytest
from conftest import make_frame, register, run_cli, runs_of
from mlflow.tracking import MlflowClient
from test_outage import _stopped

from controller import tracking
from controller.inputs.batches import log_batch
from controller.loop import cycle as cycle_module
from controller.loop.claim import NEXT, Held, claim
from controller.loop.cycle import cycle
from controller.tracking.runs import LEASE


@pytest.fixture
def follows(sqlite_uri):
    """A run to claim windows in."""
    exp = tracking.experiment_id("claims")
    return MlflowClient().create_run(exp)


def _fresh(run):
    return MlflowClient().get_run(run.info.run_id)


def test_one_claim_holds_until_released_or_lapsed(follows):
    first = claim(follows, "window-a", horizon=60)
    assert first.slot == NEXT + "1"
    with pytest.raises(Held) as held:  # the same window, or a newer one: both wait
        claim(_fresh(follows), "window-b", horizon=60)
    assert not tracking.lapsed(held.value.until)
    with pytest.raises(Held):  # a stale view of the run finds the slot taken on writing
        claim(follows, "window-a", horizon=60)

    first.release()
    second = claim(_fresh(follows), "window-a", horizon=-1)  # a lease that lapsed at once
    assert second.slot == NEXT + "2"
    third = claim(_fresh(follows), "window-a", horizon=60)
    assert third.slot == NEXT + "3"
    params = _fresh(follows).data.params
    assert params[NEXT + "1.released"] == "true" and params[NEXT + "3"].startswith("window-a ")

    MlflowClient().log_param(follows.info.run_id, NEXT + "4", "written by hand")
    assert claim(_fresh(follows), "window-a", horizon=60).slot == NEXT + "5"


def _monitors(model: str) -> list:
    return [r for r in runs_of(model, "monitor") if r.info.status == "FINISHED"]


def test_a_cycle_stands_down_while_another_holds_the_window(sqlite_uri, tmp_path):
    register("racing")
    log_batch("racing", make_frame(400, 31).drop(columns="y"))
    policy = tmp_path / "policy.toml"
    policy.write_text('[tracking]\ndeadline = "60s"\n')  # outlasts the pause below
    args = ("cycle", "--model", "racing", "--policy", str(policy))

    # The first cycle holds the window, paused once its monitor run exists.
    first = run_cli(*args, env={"DRIFTCTL_FAILPOINT": "started-monitor:stop"}, wait=False)
    while not _stopped(first.pid):
        assert first.poll() is None, first.communicate()
        time.sleep(0.1)
    second = cycle("racing")  # the same window: it stands down and logs nothing
    assert second.held_until and second.report is None and not second.monitor_run
    assert "another cycle is monitoring this window" in second.render()
    assert _monitors("racing") == []

    first.send_signal(signal.SIGCONT)
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    (logged,) = _monitors("racing")
    assert cycle("racing").monitor_run == logged.info.run_id  # nothing new since


def test_a_cycle_that_fails_after_its_claim_gives_the_window_up(sqlite_uri, monkeypatch):
    register("failing")
    log_batch("failing", make_frame(400, 41).drop(columns="y"))

    def refused(*_args):
        raise OSError("No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(cycle_module.tracking, "log_params", refused)
        with pytest.raises(OSError, match="No space"):
            cycle("failing")
    assert _monitors("failing") == []
    result = cycle("failing")  # at once: not held until the failed command's deadline
    assert not result.held_until and result.report is not None
    assert [r.info.run_id for r in _monitors("failing")] == [result.monitor_run]


def test_the_sweep_ends_runs_whose_lease_lapsed_or_is_not_a_time(sqlite_uri):
    exp = tracking.experiment_id("swept")
    started = int((time.time() - 120) * 1000)
    leases = {"lapsed": tracking.utc(time.time() - 5), "live": tracking.utc(time.time() + 60),
              "not a time": "tomorrow", "none": None}
    runs = {}
    for name, lease in leases.items():
        tags = {tracking.KIND: "monitor", tracking.MODEL: "swept"}
        if lease is not None:
            tags[LEASE] = lease
        runs[name] = MlflowClient().create_run(exp, start_time=started, tags=tags).info.run_id
    ended = tracking.sweep("swept", older_than=60)  # started 2 min ago: past that too
    assert sorted(ended) == sorted(runs[k] for k in ("lapsed", "not a time", "none"))
    status = {k: MlflowClient().get_run(v).info.status for k, v in runs.items()}
    assert status == {"lapsed": "FAILED", "live": "RUNNING", "not a time": "FAILED",
                      "none": "FAILED"}
