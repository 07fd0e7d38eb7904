"""A controller killed at any step, or two of them at once, leave a registry that converges.

Each test kills a real ``driftctl`` subprocess with SIGKILL at a named failpoint, checks
what it left behind, and reruns it.
"""

from __future__ import annotations

import signal

import pytest
from conftest import (
    aliases,
    changed_concept,
    ledger_of,
    run_cli,
    run_together,
    runs_of,
    status,
)
from mlflow.tracking import MlflowClient

from controller.inputs.batches import log_batch
from controller.loop import registry

KILLED = -signal.SIGKILL
pytestmark = pytest.mark.slow


def _kill_at(point: str, *args: str):
    code, out, err = run_cli(*args, env={"DRIFTCTL_FAILPOINT": point})
    assert code == KILLED, (code, out, err)


def _versions(model: str) -> list[str]:
    found = MlflowClient().search_model_versions(f"name = '{model}'")
    return sorted(str(v.version) for v in found)


def _promotions(model: str) -> list[str]:
    return [v for k, v in ledger_of(model).items() if k.startswith("champion.")
            and v.startswith("promote")]


@pytest.fixture
def drifted(champion):
    for week in range(3):
        log_batch("credit", changed_concept(600, 30 + week), target="y")
    return champion


def test_killed_after_logging_the_candidate(drifted):
    _kill_at("after-candidate", "retrain", "--model", "credit")
    (run,) = runs_of("credit", "retrain")
    assert run.data.tags[registry.GATE] == "passed" and _versions("credit") == ["1"]
    # The next cycle starts with promote, which registers the challenger left behind.
    code, out, err = run_cli("promote", "--model", "credit")
    assert code == 0, err
    assert "finished registering the challenger" in out
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    code, out, err = run_cli("retrain", "--model", "credit")
    assert code == 0 and "found from an earlier run" in out, err
    assert _versions("credit") == ["1", "2"] and len(runs_of("credit", "retrain")) == 1


def test_killed_after_registering_the_version(drifted):
    _kill_at("after-register", "retrain", "--model", "credit")
    assert _versions("credit") == ["1", "2"] and status("credit", "2") is None
    assert "challenger" not in aliases("credit")
    code, _out, err = run_cli("retrain", "--model", "credit")
    assert code == 0, err
    assert _versions("credit") == ["1", "2"] and status("credit", "2") == "awaiting-approval"
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    assert "| roc_auc |" in MlflowClient().get_model_version("credit", "2").description


@pytest.mark.parametrize("point", ["after-decision", "between-aliases"])
def test_killed_while_promoting(challenger, point):
    MlflowClient().set_model_version_tag("credit", "2", "approval", "approved")
    _kill_at(point, "promote", "--model", "credit")
    half = aliases("credit")
    assert half["champion"] == "1" and half["challenger"] == "2"
    assert half.get("previous-champion") == ("1" if point == "between-aliases" else None)
    code, out, err = run_cli("promote", "--model", "credit")
    assert code == 0, err
    assert "finished: promoted champion from version 1 to 2" in out
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    assert status("credit", "2") == "champion" and len(_promotions("credit")) == 1
    assert run_cli("promote", "--model", "credit")[1].strip() == "nothing to do for credit"


def test_two_controllers_at_once_promote_once(challenger):
    MlflowClient().set_model_version_tag("credit", "2", "approval", "approved")
    run_together("promote", "--model", "credit", timeout=120)
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    assert len(_promotions("credit")) == 1


def test_two_controllers_at_once_register_one_challenger(drifted):
    run_together("retrain", "--model", "credit")
    assert _versions("credit") == ["1", "2"]
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    assert len(runs_of("credit", "retrain")) == 1  # the loser's run is deleted
