"""Registering, approving, rejecting, promoting and rolling back, through the real registry.

People act with the same calls the MLflow UI makes: a version tag set in the tag editor
(``set_model_version_tag``) and an alias moved on the model page
(``set_registered_model_alias``).
"""

from __future__ import annotations

import pytest
from conftest import aliases, changed_concept, ledger_of, make_frame, runs_of, status
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.cli import main
from controller.inputs.batches import log_batch
from controller.loop.cycle import RETRAIN


def _decisions(model: str) -> list[str]:
    return [v for k, v in sorted(ledger_of(model).items()) if k.startswith("champion.")]


def test_a_passed_challenger_waits_for_approval_and_a_rerun_adds_nothing(challenger, capsys):
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    mv = MlflowClient().get_model_version("credit", "2")
    assert mv.tags["driftctl.status"] == "awaiting-approval"
    assert mv.tags["driftctl.champion_version"] == "1" and mv.tags["driftctl.gate"] == "passed"
    # The comparison is readable on the version page.
    assert "| roc_auc |" in mv.description and "Gate on **roc_auc**: passed" in mv.description
    assert mv.run_id == mv.tags["driftctl.retrain_run"]
    # Its baseline performance is the held-out one, not the flattering in-sample one.
    baseline, _ = tracking.load_baseline(mv)
    held_out = MlflowClient().get_run(mv.run_id).data.metrics["compare.roc_auc.challenger"]
    assert baseline.performance["roc_auc"] == pytest.approx(held_out)
    capsys.readouterr()
    assert main(["retrain", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "found from an earlier run" in out and "awaits approval" in out
    assert len(MlflowClient().search_model_versions("name = 'credit'")) == 2
    assert len(runs_of("credit", "retrain")) == 1
    assert main(["promote", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "1", "challenger": "2"}


def test_approval_in_the_registry_promotes_once(challenger, capsys):
    client = MlflowClient()
    client.set_model_version_tag("credit", "2", "approval", "yes")
    assert main(["promote", "--model", "credit"]) == 0
    assert "its approval 'yes' is neither" in capsys.readouterr().out
    assert aliases("credit")["champion"] == "1"

    client.set_model_version_tag("credit", "2", "approval", "Approved")
    assert main(["promote", "--model", "credit"]) == 0
    assert "promoted champion from version 1 to 2" in capsys.readouterr().out
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    assert status("credit", "2") == "champion" and status("credit", "1") == "previous-champion"
    decisions = _decisions("credit")
    assert decisions[-1].startswith("promote 1 -> 2: approved in the registry")
    # The version page says which decision made it champion.
    change = client.get_model_version("credit", "2").tags["driftctl.champion_change"]
    assert change.startswith("champion.0002 at ") and "promote 1 -> 2" in change

    assert main(["promote", "--model", "credit"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _decisions("credit") == decisions and aliases("credit")["champion"] == "2"


def test_rejection_drops_the_challenger_and_records_why(challenger, capsys):
    client = MlflowClient()
    client.set_model_version_tag("credit", "2", "approval", "rejected")
    client.set_model_version_tag("credit", "2", "reason", "fails the fairness review")
    assert main(["promote", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "1"}
    assert status("credit", "2") == "rejected"
    rejection = client.get_model_version("credit", "2").tags["driftctl.rejection"]
    assert "fails the fairness review" in rejection
    assert ledger_of("credit")["rejected.2"] == rejection
    assert all(not d.startswith("promote") for d in _decisions("credit"))


def test_moving_the_champion_alias_by_hand_is_an_approval(challenger, capsys):
    MlflowClient().set_registered_model_alias("credit", "champion", "2")
    assert main(["promote", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    assert "approved by hand" in _decisions("credit")[-1]


def test_rollback_returns_to_the_previous_champion_once(challenger, capsys):
    MlflowClient().set_model_version_tag("credit", "2", "approval", "approved")
    assert main(["promote", "--model", "credit"]) == 0
    assert main(["rollback", "--model", "credit", "--reason", "complaints"]) == 0
    assert "rolled back champion from version 2 to 1: complaints" in capsys.readouterr().out
    assert aliases("credit") == {"champion": "1"}
    assert status("credit", "2") == "rolled-back" and status("credit", "1") == "champion"
    decisions = _decisions("credit")
    assert decisions[-1] == "rollback 2 -> 1: complaints"
    assert main(["rollback", "--model", "credit"]) == 0
    assert "nothing to do: already rolled back" in capsys.readouterr().out
    assert _decisions("credit") == decisions


def test_rollback_without_a_previous_champion_is_a_clear_error(champion, capsys):
    assert main(["rollback", "--model", "credit"]) == 2
    err = capsys.readouterr().err
    assert "no alias 'previous-champion'" in err and "fix:" in err
    assert aliases("credit") == {"champion": "1"}


def test_the_cycle_retrains_on_drift_and_promotes_after_approval(champion, capsys):
    """Week 1 as in training; then the concept changes. The cycle notices the drop in
    ROC AUC, retrains, registers the challenger, and promotes it once it is approved."""
    log_batch("credit", make_frame(600, 20), target="y")
    assert main(["cycle", "--model", "credit"]) == 0
    (first,) = runs_of("credit", "monitor")
    assert first.data.tags[RETRAIN] == "false"
    for week in range(3):
        log_batch("credit", changed_concept(600, 60 + week), target="y")
    assert main(["cycle", "--model", "credit"]) == 0
    out = capsys.readouterr().out
    assert "roc_auc worse by" in out and "gate on roc_auc: PASSED" in out
    monitor = runs_of("credit", "monitor")[0]  # newest first
    (retrain,) = runs_of("credit", "retrain")
    assert monitor.data.tags[RETRAIN] == "true"
    assert monitor.data.tags["driftctl.retrain_run"] == retrain.info.run_id
    assert retrain.data.tags["driftctl.trigger_run"] == monitor.info.run_id
    assert aliases("credit") == {"champion": "1", "challenger": "2"}
    # Each decision can be found from the version pages too. The inputs did not drift
    # (the concept did), so the verdict is ok and the drop in ROC AUC triggered.
    v1 = MlflowClient().get_model_version("credit", "1").tags
    assert v1["driftctl.last_monitor_run"] == f"{monitor.info.run_id}: ok, retrain triggered"
    assert MlflowClient().get_model_version("credit", "2").run_id == retrain.info.run_id

    # Nothing new: the rerun neither monitors nor retrains again.
    assert main(["cycle", "--model", "credit"]) == 0
    assert "no new batches or labels since monitor run" in capsys.readouterr().out
    assert len(runs_of("credit", "monitor")) == 2 and len(runs_of("credit", "retrain")) == 1

    MlflowClient().set_model_version_tag("credit", "2", "approval", "approved")
    assert main(["cycle", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    # The new champion is monitored against its own baseline, so the loop goes on.
    assert main(["monitor", "--model", "credit"]) in (0, 1)
    assert runs_of("credit", "monitor")[0].data.tags["driftctl.model_version"] == "2"


def test_auto_promotion_needs_no_approval(champion, tmp_path):
    policy = tmp_path / "auto.toml"
    policy.write_text('[retrain]\npromotion = "auto"\n')
    for week in range(3):
        log_batch("credit", changed_concept(600, 70 + week), target="y")
    assert main(["retrain", "--model", "credit", "--policy", str(policy)]) == 0
    assert aliases("credit") == {"champion": "2", "previous-champion": "1"}
    assert _decisions("credit")[-1] == "promote 1 -> 2: promotion = auto in the policy"


def _approve_and_promote(model="credit", version="2"):
    MlflowClient().set_model_version_tag(model, version, "approval", "approved")
    assert main(["promote", "--model", model]) == 0


def test_a_deleted_challenger_is_not_registered_again(challenger, capsys, tmp_path):
    _approve_and_promote()
    assert main(["rollback", "--model", "credit"]) == 0
    MlflowClient().delete_model_version("credit", "2")
    auto = tmp_path / "auto.toml"
    auto.write_text('[retrain]\npromotion = "auto"\n')
    assert main(["promote", "--model", "credit", "--policy", str(auto)]) == 0
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--policy", str(auto)]) == 0
    assert "was deleted from the registry; it is not registered again" in capsys.readouterr().out
    assert [str(v.version) for v in MlflowClient().search_model_versions("name = 'credit'")] == [
        "1"]
    assert aliases("credit") == {"champion": "1"}


def test_rollback_leaves_a_pending_approval_alone(challenger, capsys):
    """Champion 2 (previous 1) and an approved challenger 3 built against 2: rolling back
    goes to 1, and challenger 3, compared with a champion that is gone, is superseded."""
    client = MlflowClient()
    _approve_and_promote()
    v3 = client.create_model_version("credit", client.get_model_version("credit", "2").source)
    client.set_model_version_tag("credit", v3.version, "driftctl.champion_version", "2")
    client.set_registered_model_alias("credit", "challenger", v3.version)
    client.set_model_version_tag("credit", v3.version, "approval", "approved")
    assert main(["rollback", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "1"}
    assert status("credit", "3") == "superseded"
    assert not any("-> 3" in d for d in _decisions("credit"))


def test_a_hand_move_after_the_old_champion_was_deleted(challenger, capsys):
    _approve_and_promote()
    client = MlflowClient()
    client.delete_model_version("credit", "2")  # the champion alias goes with it
    client.set_registered_model_alias("credit", "champion", "1")
    assert main(["promote", "--model", "credit"]) == 0
    assert _decisions("credit")[-1] == "promote 2 -> 1: the champion alias was moved by hand"
    assert aliases("credit") == {"champion": "1"} and status("credit", "1") == "champion"
    assert main(["promote", "--model", "credit"]) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("rule", ["if_better", "always"])
def test_a_waiting_challenger_is_replaced_only_by_a_better_one(challenger, capsys, tmp_path,
                                                              rule):
    """Version 2 waits for approval; a week later a new challenger of the same concept
    passes against the champion, but is no better than version 2: the reviewer's version
    stays, unless the policy says to replace it anyway."""
    policy = tmp_path / "p.toml"
    policy.write_text(f'[retrain]\nreplace_challenger = "{rule}"\n')
    log_batch("credit", changed_concept(600, 33), target="y")
    capsys.readouterr()
    assert main(["retrain", "--model", "credit", "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    newest = max(runs_of("credit", "retrain"), key=lambda r: r.info.start_time)
    tags = newest.data.tags
    assert tags["driftctl.waiting_challenger"] == "2"
    assert "versus.roc_auc.ci_low" in newest.data.metrics
    if rule == "if_better":
        assert tags["driftctl.versus_waiting"] == "failed"
        assert "does not replace version 2" in out and "not significantly better" in out
        assert aliases("credit") == {"champion": "1", "challenger": "2"}
        # Reconciling later does not register it behind the reviewer's back either.
        assert main(["promote", "--model", "credit", "--policy", str(policy)]) == 0
        assert len(MlflowClient().search_model_versions("name = 'credit'")) == 2
        assert status("credit", "2") == "awaiting-approval"
        assert not any(k.startswith("superseded.") for k in ledger_of("credit"))
    else:
        assert tags["driftctl.versus_waiting"] == "passed"
        assert aliases("credit") == {"champion": "1", "challenger": "3"}
        assert status("credit", "2") == "superseded"
        assert ledger_of("credit")["superseded.2"] == (
            "by version 3: replace_challenger = always in the policy")


@pytest.fixture
def waiting_copy(champion):
    """Version 2, a copy of the champion, waits for approval; three weeks of a new concept
    are logged, on which a challenger beats both."""
    client = MlflowClient()
    for week in range(3):
        log_batch("credit", changed_concept(600, 140 + week), target="y")
    v2 = client.create_model_version("credit", client.get_model_version("credit", "1").source)
    client.set_model_version_tag("credit", v2.version, "driftctl.champion_version", "1")
    client.set_model_version_tag("credit", v2.version, "driftctl.status", "awaiting-approval")
    client.set_registered_model_alias("credit", "challenger", v2.version)
    return champion


def test_a_significantly_better_challenger_replaces_the_waiting_one(waiting_copy, capsys):
    """The waiting version is as good as the champion at the new concept (a copy of it); a
    challenger trained on the new concept beats both, takes its place, and the ledger says
    so, once."""
    client = MlflowClient()
    assert main(["retrain", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "1", "challenger": "3"}
    assert status("credit", "2") == "superseded" and status("credit", "3") == "awaiting-approval"
    entry = ledger_of("credit")["superseded.2"]
    assert entry.startswith("by version 3: roc_auc better by +") and "held-out rows" in entry
    description = client.get_model_version("credit", "3").description
    assert "**Against version 2**" in description and "replaces version 2" in description
    assert main(["retrain", "--model", "credit"]) == 0  # rerun: found, nothing changes
    assert len(client.search_model_versions("name = 'credit'")) == 3
    assert ledger_of("credit")["superseded.2"] == entry


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-candidate", "after-register"])
def test_a_replacement_killed_half_way_is_finished_by_the_next_run(waiting_copy, point):
    from conftest import run_cli

    code, out, err = run_cli("retrain", "--model", "credit",
                             env={"DRIFTCTL_FAILPOINT": point})
    assert code == -9, (code, out, err)
    assert aliases("credit")["challenger"] == "2"
    assert main(["promote", "--model", "credit"]) == 0
    assert aliases("credit") == {"champion": "1", "challenger": "3"}
    assert status("credit", "2") == "superseded" and status("credit", "3") == "awaiting-approval"
    assert ledger_of("credit")["superseded.2"].startswith("by version 3: roc_auc better by")
    assert main(["promote", "--model", "credit"]) == 0  # and again: nothing more
    assert len(MlflowClient().search_model_versions("name = 'credit'")) == 3
