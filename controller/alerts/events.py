"""What is due: episodes of alarms, and the notifications they and the registry call for.

An *episode* is an alarm from the cycle that confirmed it to the cycle that ends it. Two
kinds run side by side, each at most one open at a time:

- ``drift``: opened by a cycle triaged ``covariate_shift`` or ``concept_drift`` (the
  classes that retraining answers, ``RETRAINS_ON``), ended by a cycle triaged ``ok``;
  ``emerging`` and ``transient`` cycles neither open nor end it;
- ``data_quality``: opened by a cycle triaged ``data_quality``, sent at once, as a pipeline
  fault; ended by the next cycle triaged anything else (its data passed the checks).

An episode is notified when it opens, again every ``repeat_after`` while it stays open,
and, with ``recovery = true``, when it ends. It keeps the evidence of its latest cycle, so
a repeat says what the cycle that opened or last continued it found. Pure functions on
plain values: the outbox (``controller.alerts``) keeps the state in MLflow.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from controller.loop.triage import RETRAINS_ON

SCHEMA = "driftctl.alert.v1"
TRACKS = ("drift", "data_quality")
SEVERITY = {
    "drift": "warning",
    "data_quality": "critical",
    "resolved": "info",
    "challenger_waiting": "info",
    "champion_changed": "info",
}
_NAMESPACE = uuid.UUID("6f1d7c2e-3b1a-4c55-9a57-2f0a0c7d9e11")
MAX_EVIDENCE, MAX_TEXT = 10, 300  # a notice records in one MLflow parameter (6000 chars)


@dataclass(frozen=True)
class Episode:
    """An open episode: the run that opened it, the latest run in it and its class, when
    it was last notified, how many notices it had, and the latest run's evidence."""

    track: str
    opened_by: str
    run: str
    kind: str
    version: str
    notified_at: float
    notices: int = 1
    evidence: tuple[str, ...] = ()

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Episode | None:
        """The episode ``dumps`` wrote; None for none, or for what it did not write."""
        try:
            data = json.loads(text)
            episode = cls(**{**data, "evidence": tuple(str(e) for e in data.get("evidence", ()))})
        except (ValueError, TypeError, AttributeError):  # not a dict, or other keys
            return None
        numbers = isinstance(episode.notified_at, int | float) and isinstance(episode.notices, int)
        return episode if numbers else None


@dataclass(frozen=True)
class Notice:
    """A notification due: ``key`` names it for good (its delivery id derives from it)."""

    event: str
    key: str
    run: str = ""
    kind: str = ""  # the triage class, for episodes
    version: str = ""
    repeat: int = 0
    episode: str = ""
    evidence: tuple[str, ...] = ()  # for episodes: what their latest cycle found


def track_of(kind: str) -> str | None:
    """The kind of episode a cycle of triage class ``kind`` belongs to, if any."""
    if kind in RETRAINS_ON:
        return "drift"
    return "data_quality" if kind == "data_quality" else None


def step(
    episodes: dict[str, Episode],
    kind: str,
    run: str,
    version: str,
    now: float,
    recovery: bool,
    evidence: tuple[str, ...] = (),
) -> tuple[dict[str, Episode], list[Notice]]:
    """Open, continue or end episodes with one cycle of triage class ``kind`` (and its
    ``evidence``); returns the open episodes after it and the notices due."""
    episodes, due = dict(episodes), []
    evidence = tuple(e[:MAX_TEXT] for e in evidence[:MAX_EVIDENCE])
    track = track_of(kind)
    if track is not None:
        open_ = episodes.get(track)
        if open_ is None:
            episodes[track] = Episode(track, run, run, kind, version, now, evidence=evidence)
            due.append(Notice(track, f"{track}/{run}/0", run, kind, version, 0, run, evidence))
        else:
            episodes[track] = replace(open_, run=run, kind=kind, version=version,
                                      evidence=evidence)
    ending = []
    if kind == "ok":
        ending = sorted(episodes)
    elif kind and kind != "data_quality" and "data_quality" in episodes:
        ending = ["data_quality"]
    for track in ending:
        ended = episodes.pop(track)
        if recovery:
            key = f"{track}/{ended.opened_by}/resolved"
            due.append(Notice("resolved", key, run, ended.kind, version, 0, ended.opened_by))
    return episodes, due


def repeats(
    episodes: dict[str, Episode], now: float, repeat_after: float
) -> tuple[dict[str, Episode], list[Notice]]:
    """The notices of episodes still open ``repeat_after`` seconds after their last one."""
    episodes, due = dict(episodes), []
    for track, e in sorted(episodes.items()):
        if now - e.notified_at >= repeat_after:
            due.append(
                Notice(track, f"{track}/{e.opened_by}/{e.notices}", e.run, e.kind, e.version,
                       e.notices, e.opened_by, e.evidence)
            )
            episodes[track] = replace(e, notified_at=now, notices=e.notices + 1)
    return episodes, due


def delivery_id(model: str, key: str) -> str:
    """A notice's delivery id: the same for every attempt, and for two controllers that
    found the same notice due, so a receiver can deduplicate."""
    return str(uuid.uuid5(_NAMESPACE, f"{model}/{key}"))


def payload(
    model: str,
    notice: Notice,
    *,
    summary: str,
    evidence: list[str],
    links: dict[str, str],
    now: float,
) -> dict:
    """The notification in driftctl's JSON schema, version 1 (see the README's "Alerts")."""
    return {
        "schema": SCHEMA,
        "event": notice.event,
        "status": "resolved" if notice.event == "resolved" else "firing",
        "severity": SEVERITY[notice.event],
        "model": model,
        "version": notice.version,
        "summary": summary[: 2 * MAX_TEXT],
        "triage": notice.kind or None,
        "evidence": [e[:MAX_TEXT] for e in evidence[:MAX_EVIDENCE]],
        "links": links,
        "run_id": notice.run or None,
        "episode": notice.episode or None,
        "repeat": notice.repeat,
        "delivery_id": delivery_id(model, notice.key),
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
    }


def summary(model: str, notice: Notice, *, evidence: list[str], extra: str = "") -> str:
    """One line a person reads first."""
    what = notice.kind.replace("_", " ")
    first = f": {evidence[0]}" if evidence else ""
    if notice.event == "drift":
        again = f" (still open, notice {notice.repeat + 1})" if notice.repeat else ""
        return f"{model} version {notice.version}: {what} confirmed{again}{first}"
    if notice.event == "data_quality":
        again = f" (still open, notice {notice.repeat + 1})" if notice.repeat else ""
        return f"{model} version {notice.version}: data quality fault{again}{first}"
    if notice.event == "resolved":
        return f"{model} version {notice.version}: resolved, the {what} episode ended{first}"
    if notice.event == "challenger_waiting":
        return (
            f"{model}: version {notice.version} waits for approval; set its tag approval to "
            "'approved' or 'rejected' in the MLflow UI"
        )
    return f"{model}: champion is now version {notice.version}{extra}"
