"""The model registry as the controller's state: aliases, version tags and a ledger.

What a person sees in the MLflow UI is all the state there is:

- aliases of the registered model: ``champion`` (the served version), ``challenger`` (a
  registered candidate that passed the gate) and ``previous-champion`` (where ``rollback``
  returns to);
- tags of every version driftctl touched: ``driftctl.status`` (awaiting-approval, champion,
  previous-champion, retired, rejected, rolled-back, superseded) and what happened to it;
- a person's decision: the version tag ``approval`` set to ``approved`` or ``rejected`` (the
  MLflow UI's tag editor), or the ``champion`` alias moved by hand;
- the *registry ledger*, a run in the controller's experiment whose parameters record each
  change of champion (``champion.0002 = promote 1 -> 2: approved in the registry``), each
  registration, each rejection and each waiting challenger replaced by a newer one
  (``superseded.2 = by version 3: ...``), and whose metric ``champion_version`` charts them.

A challenger waiting for approval is replaced only by one that beat it too, on the newer
one's held-out rows with the gate it passed against the champion (or as the policy's
``replace_challenger`` says): the version a reviewer is looking at does not change under
them for nothing.

MLflow refuses to change a parameter once logged, so a decision is written to the ledger
once: two controllers racing for the same entry either write the same decision or one of
them reads the other's. Every step after a decision is idempotent, and a change of champion
is marked as carried out only at its end, so the next run finishes one that was killed half
way. Read the state, decide once, act idempotently: rerunning converges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from controller import tracking
from controller._errors import NotFoundError
from controller._failpoints import failpoint

if TYPE_CHECKING:
    from controller.tracking import ModelVersion

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"
APPROVAL = "approval"  # set by a person on a version: approved | rejected
REASON = "reason"  # optional, set by a person next to approval; copied into the record
STATUS = tracking.TAG + "status"
CHANGE = tracking.TAG + "champion_change"  # the ledger entry that made a version champion,
# set once that change is carried out
RETRAIN_RUN = tracking.TAG + "retrain_run"
RETRAIN_KEY = tracking.TAG + "retrain_key"
GATE = tracking.TAG + "gate"  # on a retrain run: passed | failed, set when the run is complete
LEDGER_RUN = tracking.TAG + "ledger_run"
REGISTERED = tracking.TAG + "registered_version"  # on a retrain run: its version
# On a retrain run that passed while another challenger waited for approval: that version,
# whether this one replaces it (passed | failed) and why.
DUPLICATE = tracking.TAG + "duplicate_of"  # on a version registered twice from one run
RIVAL = tracking.TAG + "waiting_challenger"
VERSUS = tracking.TAG + "versus_waiting"
VERSUS_REASONS = tracking.TAG + "versus_waiting_reasons"
DESCRIPTION = "driftctl/comparison.md"
_ENTRY = re.compile(r"^(adopt|promote|rollback) (\S+) -> (\S+): (.*)$", re.S)


@dataclass(frozen=True)
class Change:
    """One change of champion, as written in the ledger."""

    slot: int
    kind: str  # adopt (first seen), promote, rollback
    source: str | None
    target: str
    why: str

    @property
    def key(self) -> str:
        return f"champion.{self.slot:04d}"

    def __str__(self) -> str:
        return f"{self.kind} {self.source or '-'} -> {self.target}: {self.why}"


def ledger(name: str) -> str:
    """The run whose parameters are the registry decisions about ``name``."""
    return tracking.singleton_run(tracking.experiment_id(name), name, "ledger", "registry ledger")


def write_once(ledger_id: str, key: str, value: str) -> str:
    """Record ``key`` = ``value`` unless the ledger holds ``key`` already; the value that holds."""
    return tracking.write_param_once(ledger_id, key, value)


def changes(ledger_id: str) -> list[Change]:
    """The ledger's changes of champion, oldest first."""
    out = []
    for key, value in tracking.get_run(ledger_id).data.params.items():
        if key.startswith("champion.") and (m := _ENTRY.match(value)):
            source = None if m[2] == "-" else m[2]
            out.append(Change(int(key.split(".")[1]), m[1], source, m[3], m[4]))
    return sorted(out, key=lambda c: c.slot)


def reconcile(name: str, promotion: str = "approval") -> list[str]:
    """Carry out what was decided in the registry; returns what happened, in words.

    Finishes a change of champion left half-done, records a champion moved by hand,
    registers a passed challenger left unregistered, and acts on the challenger's
    ``approval`` tag (or promotes it at once when ``promotion`` is ``auto``).
    """
    lid = ledger(name)
    said = _settle(name, lid) + _register_pending(name, lid)
    for _ in range(10):  # each pass acts once; a concurrent controller may add a pass
        said += _settle(name, lid)
        log = changes(lid)  # the ledger before the aliases: see _settle
        aliases = _aliases(name)
        champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
        if challenger is None or challenger == champion:
            if challenger is not None:  # moved by hand onto the challenger: done with it
                _drop(name, CHALLENGER)
            break
        mv = tracking.get_version(name, challenger)
        approval = mv.tags.get(APPROVAL, "").strip().lower()
        if approval == "approved" or (promotion == "auto" and not approval):
            why = (
                f"approved in the registry (tag approval={mv.tags[APPROVAL]}"
                + (f", reason: {mv.tags[REASON]}" if REASON in mv.tags else "")
                + ")"
                if approval
                else "promotion = auto in the policy"
            )
            change = _decide(name, lid, log, "promote", champion, challenger, why)
            said.append(_words(_carry_out(name, lid, change)))
        elif approval == "rejected":
            said.append(_reject(name, lid, mv))
        else:
            said.append(
                f"version {challenger} awaits approval: set its tag approval to 'approved' "
                "or 'rejected' in the MLflow UI"
                + (f" (its approval {mv.tags[APPROVAL]!r} is neither)" if approval else "")
            )
            break
    return said


def _settle(name: str, lid: str) -> list[str]:
    """Finish a change of champion left half-done and record one made by hand.

    The ledger is read before the aliases: a change another controller makes in between
    then shows as a champion ahead of the ledger, and writing it down as a hand move loses
    the race for the ledger's slot to that controller's own entry, which is carried out.
    """
    said = []
    for _ in range(10):
        log = changes(lid)
        last = log[-1] if log else None
        if last and not _carried_out(name, last):
            said.append(f"finished: {_words(_carry_out(name, lid, last))}")
            continue
        aliases = _aliases(name)
        champion = aliases.get(CHAMPION)
        if champion is None:
            raise NotFoundError(
                f"model {name!r} has no alias 'champion'",
                f"set it on the version in production: MlflowClient()."
                f"set_registered_model_alias({name!r}, 'champion', VERSION)",
            )
        if last is not None and last.target == champion:
            break
        why = (
            "champion when driftctl first saw it"
            if last is None
            else "approved by hand: the champion alias was moved to the challenger"
            if aliases.get(CHALLENGER) == champion
            else "the champion alias was moved by hand"
        )
        kind = "adopt" if last is None else "promote"
        change = _decide(name, lid, log, kind, last.target if last else None, champion, why)
        said.append(_words(_carry_out(name, lid, change)))
    return said


def rollback(name: str, why: str = "requested with driftctl rollback") -> list[str]:
    """Move ``champion`` back to ``previous-champion``, recorded like any promotion.

    Pending approvals are left alone: a rollback returns to the version before the
    current champion, never through a challenger approved meanwhile.
    """
    lid = ledger(name)
    said: list[str] = []
    for _ in range(10):  # a change another controller left unfinished goes first
        said += _settle(name, lid)  # finish anything half-done, know the current champion
        log = changes(lid)
        aliases = _aliases(name)
        previous = aliases.get(PREVIOUS)
        if previous is None:
            if log and log[-1].kind == "rollback" and log[-1].target == aliases.get(CHAMPION):
                return [*said, f"nothing to do: already {_words(log[-1])}"]
            raise NotFoundError(
                f"model {name!r} has no alias 'previous-champion' to roll back to",
                "move the champion alias by hand in the MLflow UI to the version you want",
            )
        change = _carry_out(
            name, lid, _decide(name, lid, log, "rollback", aliases[CHAMPION], previous, why)
        )
        said.append(_words(change))
        if change.kind == "rollback":
            return said
    return said


def register(name: str, run_id: str) -> tuple[ModelVersion | None, str]:
    """Register a passed challenger's run as a version with the alias ``challenger``.

    Once per retrain key: when a concurrent controller registered a challenger for the same
    key first, its version is the one returned, and this run is deleted.
    """
    lid = ledger(name)
    run = tracking.get_run(run_id)
    key = "register." + run.data.tags[RETRAIN_KEY][:32]
    pending = waiting(name)
    if (
        pending is not None
        # A run of the same retrain key registered first (its ledger entry comes before
        # its alias) is the one to find below, not a challenger to defend.
        and key not in tracking.get_run(lid).data.params
        and not _versions_of(name, run_id)
        and not _replaces(run.data.tags, str(pending.version))
    ):
        return None, (
            f"version {pending.version} waits for approval and this challenger "
            + (
                "was not found better than it"
                if run.data.tags.get(RIVAL) == str(pending.version)
                else "was built before it was registered"
            )
            + ": it is not registered"
        )
    winner = write_once(lid, key, run_id)
    if winner != run_id:
        tracking.discard_run(run_id, f"another controller's challenger {winner} was chosen")
        run = tracking.get_run(winner)
    versions = _versions_of(name, winner)
    if not versions and REGISTERED in run.data.tags:
        return None, (
            f"version {run.data.tags[REGISTERED]} of this challenger was deleted from the "
            "registry; it is not registered again"
        )
    if not versions:
        tracking.create_version(name, winner, tags={RETRAIN_RUN: winner})
        versions = _versions_of(name, winner)
    keep, *extra = sorted(versions, key=lambda v: int(v.version))
    for v in extra:  # a concurrent controller registered the same run: keep the first
        if not tracking.delete_version(name, v.version):  # the account lacks MANAGE
            _tag(name, v.version, DUPLICATE, str(keep.version))
    version = str(keep.version)  # MLflow gives it as an int
    tracking.idempotent(tracking.set_run_tag, winner, REGISTERED, version)
    failpoint("after-register")
    if STATUS in keep.tags:  # registered before: whatever happened since stands
        return keep, f"registered before as version {version} (now {keep.tags[STATUS]})"
    description = tracking.read_text_artifact(winner, DESCRIPTION)
    tracking.describe_version(name, version, description)
    tags = run.data.tags
    for key in ("champion_version", "trigger_run", "gate", "holdout_digest"):
        _tag(name, version, tracking.TAG + key, tags.get(tracking.TAG + key, ""))
    _tag(name, version, tracking.BASELINE_RUN, winner)
    _tag(name, version, LEDGER_RUN, lid)
    aliases = _aliases(name)
    pending = aliases.get(CHALLENGER)
    if pending is not None and pending == aliases.get(CHAMPION):
        _drop(name, CHALLENGER)  # promoted by hand already
    elif pending not in (None, version):
        why = tags.get(VERSUS_REASONS) or "a newer challenger passed the gate"
        write_once(lid, f"superseded.{pending}", f"by version {version}: {why}"[:1000])
        _tag(name, pending, STATUS, "superseded")
        _tag(name, pending, tracking.TAG + "superseded_by", version)
    _alias(name, CHALLENGER, version)
    _tag(name, version, STATUS, "awaiting-approval")  # last: registration is complete
    return keep, f"registered as version {version} with the alias challenger"


def waiting(name: str) -> ModelVersion | None:
    """The challenger waiting for a decision (alias ``challenger`` on another version than
    the champion), if any."""
    aliases = _aliases(name)
    version = aliases.get(CHALLENGER)
    if version is None or version == aliases.get(CHAMPION):
        return None
    return tracking.model_version(name, version)  # None when deleted meanwhile


def _replaces(tags: dict[str, str], pending: str) -> bool:
    """Whether the retrain run with ``tags`` may take the place of the waiting challenger
    ``pending``: it was compared with that very version and found better (or the policy
    said to replace it)."""
    return tags.get(RIVAL) == pending and tags.get(VERSUS) == "passed"


def gate_of(name: str, trigger_run: str) -> str:
    """The gate (passed | failed) of the challenger the monitor run ``trigger_run``
    triggered, or "" if none was judged."""
    runs = complete_retrains(name, f"tags.`{tracking.TAG}trigger_run` = '{trigger_run}'", 1)
    return runs[0].data.tags[GATE] if runs else ""


def complete_retrains(name: str, where: str = "", limit: int = 100) -> list:
    """The newest ``limit`` retrain runs matching ``where`` that finished and were judged,
    newest first (each carries its comparison's metrics: not all of history's)."""
    where = f"tags.`{GATE}` != ''" + (f" and {where}" if where else "")
    return tracking.latest_runs(name, "retrain", limit, where)


def _register_pending(name: str, lid: str) -> list[str]:
    """Register the newest passed challenger of the current champion if a crash left it
    unregistered."""
    aliases = _aliases(name)
    for run in complete_retrains(name):
        tags = run.data.tags
        if tags[GATE] != "passed":
            continue
        if tags.get(tracking.TAG + "champion_version") != aliases.get(CHAMPION):
            break  # built against an earlier champion: stale
        versions = _versions_of(name, run.info.run_id)
        if all(STATUS in v.tags for v in versions) and (versions or REGISTERED in tags):
            break  # registered, or registered and deleted by a person since
        pending = aliases.get(CHALLENGER)
        waits = pending not in (None, aliases.get(CHAMPION))
        if waits and not versions and not _replaces(tags, pending):
            continue  # it does not take the place of the challenger waiting for approval
        mv, _ = register(name, run.info.run_id)
        return [
            f"finished registering the challenger of run {run.info.run_id} as version {mv.version}"
        ]
    return []


def _decide(name: str, lid: str, log: list[Change], kind, source, target, why) -> Change:
    """Write the next change of champion once; returns the change that holds its slot.

    Never on top of an unfinished change: that one is returned, to be carried out first
    (another controller may have written it after this one last looked), and the caller
    looks again.
    """
    if log and not _carried_out(name, log[-1]):
        return log[-1]
    want = Change(len(log) + 1, kind, source, target, why[:1000])
    held = write_once(lid, want.key, str(want))
    if held == str(want):
        return want
    m = _ENTRY.match(held)  # a concurrent controller decided first: carry out its decision
    return Change(want.slot, m[1], None if m[2] == "-" else m[2], m[3], m[4])


def _carry_out(name: str, lid: str, change: Change) -> Change:
    """Make the registry show ``change``; every step is idempotent, the marker comes last."""
    failpoint("after-decision")
    if changes(lid)[-1].slot != change.slot:
        return change  # a later decision was made meanwhile: it is the one to carry out
    aliases = _aliases(name)
    if change.source and not _exists(name, change.source):
        change = replace(change, source=None)  # deleted since: nothing to point back at
    if change.kind == "rollback":
        _alias(name, CHAMPION, change.target)
        if change.source:
            _tag(name, change.source, STATUS, "rolled-back")
    else:
        if change.source and change.source != change.target:
            _alias(name, PREVIOUS, change.source)
            failpoint("between-aliases")
        _alias(name, CHAMPION, change.target)
    if _aliases(name).get(PREVIOUS) == change.target:  # no version is its own predecessor
        _drop(name, PREVIOUS)
    pending = aliases.get(CHALLENGER)
    if pending == change.target:
        _drop(name, CHALLENGER)
    elif (
        pending
        and tracking.get_version(name, pending).tags.get(tracking.TAG + "champion_version")
        != change.target
    ):
        # Its comparison was with another champion: it no longer says anything.
        _tag(name, pending, STATUS, "superseded")
        _tag(name, pending, tracking.TAG + "superseded_by", f"champion {change.target}")
        _drop(name, CHALLENGER)
    roles = {change.target: "champion"}
    if change.kind != "rollback" and change.source and change.source != change.target:
        roles[change.source] = "previous-champion"
    for mv in tracking.versions(name):
        version, status = str(mv.version), mv.tags.get(STATUS)
        if version in roles and status != roles[version]:
            _tag(name, version, STATUS, roles[version])
        elif version not in roles and status in ("champion", "previous-champion"):
            _tag(name, version, STATUS, "retired")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    _tag(name, change.target, LEDGER_RUN, lid)
    _tag(name, change.target, CHANGE, f"{change.key} at {now}: {change}")
    tracking.log_metrics(lid, {"champion_version": float(change.target)}, step=change.slot)
    return change


def _exists(name: str, version: str) -> bool:
    return tracking.model_version(name, version) is not None


def _carried_out(name: str, change: Change) -> bool:
    mv = tracking.model_version(name, change.target)
    if mv is None:
        return True  # the version was deleted: nothing left to carry out
    return mv.tags.get(CHANGE, "").startswith(change.key + " ")


def _reject(name: str, lid: str, mv: ModelVersion) -> str:
    version = str(mv.version)
    why = (
        f"rejected in the registry (tag approval={mv.tags[APPROVAL]}"
        + (f", reason: {mv.tags[REASON]})" if REASON in mv.tags else ")")[:1000]
    )
    write_once(lid, f"rejected.{version}", why)
    _tag(name, version, tracking.TAG + "rejection", why)
    if _aliases(name).get(CHALLENGER) == version:
        _drop(name, CHALLENGER)
    _tag(name, version, STATUS, "rejected")
    return f"version {version} {why}; the challenger alias is removed"


def _words(change: Change) -> str:
    if change.kind == "adopt":
        return f"adopted version {change.target} as champion: {change.why}"
    verb = "rolled back" if change.kind == "rollback" else "promoted"
    return f"{verb} champion from version {change.source} to {change.target}: {change.why}"


# The registry's state, and writes repeated safely when they race another controller.
_aliases = tracking.aliases
_tag = tracking.set_version_tag
_alias = tracking.set_alias


def _versions_of(name: str, run_id: str) -> list[ModelVersion]:
    return tracking.versions(name, run_id)


def _drop(name: str, alias: str) -> None:
    if alias in _aliases(name):
        tracking.delete_alias(name, alias)  # gone meanwhile (another controller) is fine
