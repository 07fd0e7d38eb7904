"""Notifications of what needs a person: confirmed drift, data-quality faults, a challenger
waiting for approval, a new champion; by signed webhook and by e-mail (policy ``[alerts]``).

``begin`` checks the settings and opens the outbox before a cycle writes anything;
``dispatch`` finds what is due after it, records each notification once in the outbox,
and delivers every one not yet delivered. The outbox is a run of kind ``alerts`` in the
controller's experiment:

- parameter ``alert.<delivery id>``: the notification (channels and payload), written once,
  so every attempt sends the same body with the same delivery id;
- parameter ``try.<delivery id>.<channel>.<n>``: attempt n, claimed once, with the time
  of the claim; a claim younger than ``CLAIM_SECONDS`` whose outcome is not recorded yet
  is an attempt in progress, and another controller leaves it alone;
- tags ``sent.<delivery id>.<channel>`` (when it was delivered; never sent again),
  ``failed.<delivery id>.<channel>`` (``attempt <n>: why`` it failed) and
  ``done.<delivery id>`` (delivered or given up on every channel: never looked at again);
- tags ``episode.drift`` and ``episode.data_quality`` (the open episodes),
  ``last_monitor_run`` and ``ledger_seen`` (what was looked at already).

A failed delivery never fails the cycle, whatever it raised: it is recorded (tag
``driftctl.alerts`` on the monitor run) and tried again by the next cycle, up to
``MAX_ATTEMPTS`` times. Nor does an outbox edited by hand: an entry that cannot be read is
taken as absent.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from controller import tracking
from controller._errors import DriftctlError
from controller.alerts import deliver, events
from controller.alerts.events import Episode, Notice
from controller.loop import registry
from controller.loop.triage import TRIAGE
from controller.policy import Alerts, Policy

__all__ = ["RESULT", "begin", "check", "dispatch"]

RESULT = tracking.TAG + "alerts"  # on a monitor run: what its cycle sent and what failed
MAX_ATTEMPTS = 50  # per notification and channel; a cycle makes one attempt at most
PARAM_LIMIT = 6000  # characters of an MLflow parameter's value
SUMMARY = "driftctl/summary.json"  # a monitor run's report (controller.loop.cycle.SUMMARY)
CLAIM_SECONDS = 120.0  # an attempt takes far less (deliver.DEADLINE); older, it was lost


def check(policy: Policy) -> None:
    """Raise DriftctlError when the alerts cannot be sent as configured: a webhook without
    its signing secret, an SMTP user without a password."""
    a = policy.alerts
    if a.webhook and not os.environ.get(deliver.SECRET):
        raise DriftctlError(
            f"[alerts] webhook is set but the environment variable {deliver.SECRET} is not: "
            "driftctl signs every webhook request and sends none unsigned",
            f"export {deliver.SECRET}=<a long random string> and give the receiver the same "
            "secret to verify with (controller.signing.verify), or remove webhook from "
            "[alerts]",
        )
    if a.smtp and os.environ.get(deliver.SMTP_USERNAME) and not os.environ.get(
        deliver.SMTP_PASSWORD
    ):
        raise DriftctlError(
            f"{deliver.SMTP_USERNAME} is set but {deliver.SMTP_PASSWORD} is not",
            f"export {deliver.SMTP_PASSWORD} too, or unset {deliver.SMTP_USERNAME} for a "
            "server that needs no login",
        )


def begin(name: str, policy: Policy) -> None:
    """Check the settings, then open the outbox: from its first opening, changes of
    champion are notified (earlier ones are history, not news)."""
    check(policy)
    if not policy.alerts.enabled:
        return
    outbox = _outbox(name)
    if "ledger_seen" not in tracking.get_run(outbox).data.tags:
        seen = max((c.slot for c in registry.changes(registry.ledger(name))), default=0)
        tracking.set_run_tag(outbox, "ledger_seen", str(seen))


def dispatch(
    name: str,
    policy: Policy,
    *,
    monitor_run: str | None = None,
    report=None,
    now: float | None = None,
) -> list[str]:
    """Send what is due for ``name``: the episode ``monitor_run`` opens or ends (once per
    run), repeats, a waiting challenger, changes of champion, and every earlier notification
    not yet delivered. Never raises for a failed delivery; returns what happened, in words
    (nothing when nothing was due), and records it on ``monitor_run``."""
    a = policy.alerts
    check(policy)
    if not a.enabled:
        return []
    now = time.time() if now is None else now
    outbox = _outbox(name)
    state = tracking.get_run(outbox).data
    due, updates = _due(name, a, state, monitor_run, report, now)
    channels = [c for c, on in (("webhook", a.webhook), ("email", a.smtp)) if on]
    records = {
        k.removeprefix("alert."): record
        for k, v in state.params.items()
        if k.startswith("alert.") and "done." + k.removeprefix("alert.") not in state.tags
        and (record := _read_record(v)) is not None
    }
    for payload in due:
        record = _record(channels, payload)
        held = tracking.write_param_once(outbox, "alert." + payload["delivery_id"], record)
        if (read := _read_record(held)) is not None:
            records[payload["delivery_id"]] = read
    # The state moves on only once its notifications are recorded: after a crash in
    # between they are found due again, under the same delivery ids.
    for key, value in updates.items():
        tracking.set_run_tag(outbox, key, value)
    sent, failed = _deliver(outbox, a, records, state, now)
    if not sent and not failed:
        return []
    said = f"alerts: {len(sent)} sent" + (f" ({', '.join(sent)})" if sent else "")
    if failed:
        said += f"; {len(failed)} failed, tried again next cycle: " + "; ".join(failed)
    said = said[:4000]
    tracking.set_run_tag(outbox, "last_dispatch", said)
    if monitor_run:
        tracking.set_run_tag(monitor_run, RESULT, said)
    return [said]


def _record(channels: list[str], payload: dict) -> str:
    """The outbox's record of a notification, within what an MLflow parameter holds."""
    while True:
        record = json.dumps({"channels": channels, "payload": payload}, sort_keys=True)
        if len(record) <= PARAM_LIMIT or not payload["evidence"]:
            return record
        payload = {**payload, "evidence": payload["evidence"][:-1]}


def _read_record(text: str) -> dict | None:
    """A notification the outbox recorded, or None for what ``_record`` did not write."""
    try:
        record = json.loads(text)
        payload, channels = record["payload"], record["channels"]
        readable = (isinstance(channels, list) and set(channels) <= {"webhook", "email"}
                    and all(isinstance(payload[k], str) for k in ("timestamp", "event")))
    except (ValueError, TypeError, KeyError):  # TypeError: no dict, or a list in channels
        return None
    return record if readable else None


def _number(text: str) -> int | None:
    """A count or unix time the outbox wrote, or None (int() would take "٣", or raise on
    5,000 digits)."""
    return int(text) if re.fullmatch("[0-9]{1,15}", text) else None


def _outbox(name: str) -> str:
    return tracking.singleton_run(tracking.experiment_id(name), name, "alerts", "alerts outbox")


def _due(name, a: Alerts, state, monitor_run, report, now) -> tuple[list[dict], dict]:
    """The payloads of the notifications due now, and the outbox's tags that change once
    they are recorded (open episodes, what was looked at)."""
    tags, updates = state.tags, {}
    episodes = {t: e for t in events.TRACKS if (e := Episode.loads(tags.get(f"episode.{t}", "")))}
    before = dict(episodes)
    notices: list[Notice] = []
    runs = {}
    if monitor_run and tags.get("last_monitor_run") != monitor_run:
        runs[monitor_run] = run = tracking.get_run(monitor_run)
        kind = run.data.tags.get(TRIAGE, "")
        version = run.data.tags.get(tracking.VERSION, "")
        evidence = tuple(_evidence(run, report))
        episodes, notices = events.step(episodes, kind, monitor_run, version, now, a.recovery,
                                        evidence)
        updates["last_monitor_run"] = monitor_run
    episodes, again = events.repeats(episodes, now, a.repeat_seconds)
    notices += again
    for t in events.TRACKS:
        if episodes.get(t) != before.get(t):
            updates[f"episode.{t}"] = episodes[t].dumps() if t in episodes else ""
    pending = registry.waiting(name)
    if pending is not None:
        v = str(pending.version)
        notice = Notice("challenger_waiting", f"waiting/{v}", version=v)
        if "alert." + events.delivery_id(name, notice.key) not in state.params:
            notices.append(notice)  # once per waiting version
    seen = _number(tags.get("ledger_seen", "0"))
    if seen is None:  # unreadable: what the ledger holds is history, as in a new outbox
        seen = max((c.slot for c in registry.changes(registry.ledger(name))), default=0)
    changes = {c.slot: c for c in registry.changes(registry.ledger(name)) if c.slot > seen}
    for c in changes.values():
        if c.kind != "adopt":  # the champion driftctl first saw: no change
            notices.append(Notice("champion_changed", f"champion/{c.slot}", version=c.target))
    if changes:
        updates["ledger_seen"] = str(max(changes))
    ui = _ui(a)
    out = []
    for n in notices:
        evidence, extra = list(n.evidence), ""
        if n.run:
            run = runs.get(n.run) or tracking.get_run(n.run)
            runs[n.run] = run
            if n.event not in events.TRACKS:  # an episode's notice has its own evidence
                evidence = _evidence(run, report)
        if n.event == "champion_changed":
            c = changes[int(n.key.split("/")[1])]
            verb = "rolled back" if c.kind == "rollback" else "promoted"
            extra = f" ({verb} from version {c.source or '-'}: {c.why})"
            evidence = [str(c)]
        links = _links(name, n, ui, runs.get(n.run))
        text = events.summary(name, n, evidence=evidence, extra=extra)
        out.append(events.payload(name, n, summary=text, evidence=evidence, links=links,
                                  now=now))
    return out, updates


def _evidence(run, report) -> list[str]:
    """The triage's evidence: from the report when this cycle made it, else from the
    summary the run logged (a cycle that found its monitor run made already)."""
    if report is not None and report.context.get("run_id") == run.info.run_id:
        return list(report.triage.evidence) if report.triage else []
    try:
        summary = json.loads(tracking.read_text_artifact(run.info.run_id, SUMMARY))
        return [str(e) for e in (summary.get("triage") or {}).get("evidence", [])]
    except Exception:  # no summary (an older run), or none it can read: the tags, then
        drifted = run.data.tags.get(tracking.TAG + "drifted_features", "")
        return [f"{f} drifted" for f in drifted.split(",") if f]


def _ui(a: Alerts) -> str:
    """The MLflow UI's base URL, or "" when it is not known (no links then)."""
    if a.ui_url:
        return a.ui_url.rstrip("/")
    uri = urlsplit(tracking.tracking_uri())
    if uri.scheme not in ("http", "https"):
        return ""
    host = uri.hostname + (f":{uri.port}" if uri.port else "")  # never its credentials
    return urlunsplit((uri.scheme, host, uri.path.rstrip("/"), "", ""))


def _links(name: str, n: Notice, ui: str, run) -> dict[str, str]:
    if not ui:
        return {}
    links = {}
    if run is not None:
        links["run"] = f"{ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    if n.version:
        links["version"] = f"{ui}/#/models/{name}/versions/{n.version}"
    return links


def _deliver(outbox: str, a: Alerts, records: dict, state, now: float
             ) -> tuple[list[str], list[str]]:
    """One attempt for each notification and channel not yet delivered, oldest first;
    returns what was sent and what failed, in words."""
    sent, failed = [], []
    tries, last_claim = Counter(), {}
    for key, value in state.params.items():
        claim = re.fullmatch(r"try\.([^.]+)\.(webhook|email)\.([0-9]{1,6})", key)
        if claim:
            delivery, channel, n = claim[1], claim[2], int(claim[3])
            tries[delivery, channel] += 1
            if n > last_claim.get((delivery, channel), (0, ""))[0]:
                last_claim[delivery, channel] = (n, value)
    order = sorted(records.items(), key=lambda kv: (kv[1]["payload"]["timestamp"], kv[0]))
    for delivery, record in order:
        payload = record["payload"]
        finished = 0
        for channel in record["channels"]:
            done = f"sent.{delivery}.{channel}" in state.tags
            if done or tries[delivery, channel] >= MAX_ATTEMPTS:
                finished += 1
                continue
            if not _configured(a, channel) or _in_progress(state, delivery, channel,
                                                            last_claim, now):
                continue
            n = tries[delivery, channel] + 1
            token = f"{uuid.uuid4().hex}@{now:.0f}"
            if tracking.write_param_once(outbox, f"try.{delivery}.{channel}.{n}", token) != token:
                continue  # another controller makes this attempt
            why = _attempt(a, channel, payload)
            what = f"{payload['event']} by {channel}"
            if why is None:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                tracking.set_run_tag(outbox, f"sent.{delivery}.{channel}", stamp)
                sent.append(what)
            else:
                tracking.set_run_tag(outbox, f"failed.{delivery}.{channel}",
                                     f"attempt {n}: {why}"[:4000])
                failed.append(f"{what}: {why} (attempt {n})")
            finished += why is None or n >= MAX_ATTEMPTS
        if finished == len(record["channels"]):
            tracking.set_run_tag(outbox, f"done.{delivery}", "true")
    return sent, failed


def _in_progress(state, delivery: str, channel: str, last_claim: dict, now: float) -> bool:
    """Whether another controller's attempt is under way: its claim is recent and neither
    sent nor failed is recorded for it."""
    if (delivery, channel) not in last_claim:
        return False
    n, token = last_claim[delivery, channel]
    claimed = re.fullmatch(r"[0-9a-f]+@([0-9]{1,15})", token)
    if claimed is None or now - int(claimed[1]) >= CLAIM_SECONDS:
        return False  # a claim of old, or one whose controller stopped mid-attempt
    outcome = re.match(r"attempt ([0-9]{1,6}):", state.tags.get(f"failed.{delivery}.{channel}", ""))
    return outcome is None or int(outcome[1]) < n


def _configured(a: Alerts, channel: str) -> bool:
    return bool(a.webhook if channel == "webhook" else a.smtp)


def _attempt(a: Alerts, channel: str, payload: dict) -> str | None:
    """None when delivered, else why not; never raises (a delivery never fails a cycle)."""
    try:
        if channel == "webhook":
            data = deliver.body(payload, a.format)
            return deliver.post(a.webhook, data, payload["delivery_id"],
                                os.environ[deliver.SECRET])
        return deliver.send(a.smtp, deliver.email(payload, a.sender, a.to))
    except Exception as exc:  # its message could hold the URL: the class only
        return f"{channel}: {type(exc).__name__}"
