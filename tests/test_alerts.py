"""Alerts reach a real HTTP receiver and a real SMTP server on 127.0.0.1, signed, once per
episode or registry event, and survive a receiver that is down.

Real cycles produce the triage classes on generated data (as in test_triage.py); the
episode rules are also checked on plain values, where real cycles would be slow.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from conftest import make_frame, register, run_cli, runs_of
from mlflow.tracking import MlflowClient

from controller import signing, tracking
from controller._errors import DriftctlError
from controller.alerts import RESULT, deliver, dispatch, events
from controller.alerts.events import Episode
from controller.inputs.batches import log_batch
from controller.loop.cycle import cycle, promote
from controller.policy import Alerts, Multivariate, Policy, Retrain

SECRET = "s3cret-signing-key-0123456789"
TOKEN = "T000/B000/XXXXtokenXXXX"  # the secret part of a Slack-style webhook URL


class Receiver(ThreadingHTTPServer):
    """Records every request; answers with ``status`` and ``reply_headers``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.status = 200
        self.reply_headers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/{TOKEN}"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    @classmethod
    @contextlib.contextmanager
    def running(cls):
        """A receiver serving on its own thread until the block ends."""
        server = cls()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self, status=None):
        status = status or self.server.status
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append({"method": self.command, "headers": dict(self.headers),
                                     "body": body, "status": status})
        self.send_response(status)
        for key, value in self.server.reply_headers.items():
            self.send_header(key, value)
        self.end_headers()

    def do_GET(self):  # what a client that follows a redirect sends next, answered 200
        self.do_POST(200)

    def log_message(self, *args):
        pass


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=email_policy))
        return "250 OK"


@pytest.fixture(scope="module")
def receiver():
    with Receiver.running() as server:
        yield server


@pytest.fixture
def hook(receiver, monkeypatch):
    receiver.requests.clear()
    receiver.status = 200
    receiver.reply_headers = {}
    monkeypatch.setenv("DRIFTCTL_ALERT_SECRET", SECRET)
    return receiver


@pytest.fixture(scope="module")
def smtp_server():
    mailbox = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    controller.mailbox = mailbox
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(smtp_server):
    smtp_server.mailbox.messages.clear()
    return smtp_server.mailbox


def _policy(receiver, smtp=None, **alerts) -> Policy:
    smtp = {"smtp": f"smtp://127.0.0.1:{smtp.port}", "to": ("oncall@example.com",)} if smtp else {}
    return Policy(
        multivariate=Multivariate(enabled=False),  # faster; input drift is in x1 alone
        retrain=Retrain(consecutive_cycles=2),
        alerts=Alerts(webhook=receiver.url, ui_url="http://mlflow.example:5000", **smtp,
                      **alerts),
    )


def _independent_signature(headers: dict, body: bytes) -> str:
    message = f"{headers['X-Driftctl-Delivery-Id']}.{headers['X-Driftctl-Timestamp']}.".encode()
    digest = hmac.new(SECRET.encode(), message + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _everything_logged(model: str) -> str:
    """Every tag, parameter and text artifact of the model's controller runs."""
    out = []
    for run in runs_of(model):
        out += [*run.data.tags.items(), *run.data.params.items()]
        for f in MlflowClient().list_artifacts(run.info.run_id, "driftctl"):
            if f.path.endswith((".json", ".html", ".md", ".txt")):
                out.append(tracking.read_text_artifact(run.info.run_id, f.path))
    return repr(out)


# -- episodes on plain values ------------------------------------------------------------


def _run(kinds, *, recovery=False, repeat_after=3600.0, dt=600.0):
    """Notices for a series of triage classes, one cycle every ``dt`` seconds."""
    episodes, out = {}, []
    for i, kind in enumerate(kinds):
        now = i * dt
        episodes, due = events.step(episodes, kind, f"r{i}", "1", now, recovery)
        episodes, again = events.repeats(episodes, now, repeat_after)
        out += [(i, n.event, n.repeat) for n in due + again]
    return out, episodes


def test_one_notice_per_episode_and_again_after_recovery():
    kinds = ["ok", "covariate_shift", "covariate_shift", "concept_drift", "ok", "covariate_shift"]
    assert _run(kinds)[0] == [(1, "drift", 0), (5, "drift", 0)]
    assert _run(kinds, recovery=True)[0] == [(1, "drift", 0), (4, "resolved", 0),
                                            (5, "drift", 0)]


def test_emerging_and_transient_send_nothing_and_end_nothing():
    assert _run(["emerging", "transient", "ok", "emerging"], recovery=True)[0] == []
    notices, episodes = _run(["covariate_shift", "emerging", "transient"], recovery=True)
    assert notices == [(0, "drift", 0)] and set(episodes) == {"drift"}


def test_data_quality_is_its_own_episode_sent_at_once():
    kinds = ["covariate_shift", "data_quality", "data_quality", "covariate_shift", "ok"]
    assert _run(kinds, recovery=True)[0] == [
        (0, "drift", 0), (1, "data_quality", 0), (3, "resolved", 0), (4, "resolved", 0)
    ]


def test_a_data_quality_episode_ends_with_the_next_cycle_of_any_other_class():
    # A week of daily drifting cycles after one broken batch: the fault is over, and is
    # not notified again every day.
    notices, episodes = _run(["data_quality"] + ["covariate_shift"] * 7,
                             repeat_after=24 * 3600, dt=24 * 3600)
    assert notices == [(0, "data_quality", 0), (1, "drift", 0), (2, "drift", 1),
                       (3, "drift", 2), (4, "drift", 3), (5, "drift", 4), (6, "drift", 5),
                       (7, "drift", 6)]
    assert set(episodes) == {"drift"}
    assert _run(["data_quality", "emerging"], recovery=True)[0] == [
        (0, "data_quality", 0), (1, "resolved", 0)]


def test_a_repeat_carries_the_evidence_of_the_episode_s_latest_cycle():
    episodes, (first,) = events.step({}, "data_quality", "r0", "1", 0, False,
                                     ("x2: 30% out of range",))
    episodes, _ = events.step(episodes, "data_quality", "r1", "1", 600, False,
                              ("x2: 40% out of range",))
    episodes, (again,) = events.repeats(_stored(episodes), 25 * 3600, 24 * 3600)
    assert first.evidence == ("x2: 30% out of range",)
    assert (again.run, again.repeat, again.evidence) == ("r1", 1, ("x2: 40% out of range",))
    summary = events.summary("m", again, evidence=list(again.evidence))
    assert summary == "m version 1: data quality fault (still open, notice 2): x2: 40% out of range"


def _stored(episodes):
    """The episodes as the outbox keeps them, in a tag, and reads them back."""
    return {t: Episode.loads(e.dumps()) for t, e in episodes.items()}


def test_an_unresolved_episode_repeats_after_repeat_after():
    notices, episodes = _run(["concept_drift"] * 8, repeat_after=1800, dt=600)
    assert notices == [(0, "drift", 0), (3, "drift", 1), (6, "drift", 2)]
    assert Episode.loads(episodes["drift"].dumps()) == episodes["drift"]


def test_delivery_ids_are_stable_and_distinct():
    assert events.delivery_id("m", "drift/r1/0") == events.delivery_id("m", "drift/r1/0")
    assert len({events.delivery_id(m, k) for m in "ab" for k in ("drift/r1/0", "drift/r1/1")}) == 4


# -- real cycles -------------------------------------------------------------------------


def _cycle(name, frame, policy):
    log_batch(name, frame.drop(columns="y"))
    return cycle(name, last=1, policy=policy)


@pytest.mark.slow
def test_cycles_send_one_signed_notice_per_episode_by_webhook_and_email(
    champion, hook, smtp_server, mailbox, capsys
):
    policy = _policy(hook, smtp_server, recovery=True)
    # A receiver that fails the first notice: the cycle succeeds and records it.
    hook.status = 500
    kinds = []
    for seed, shift in [(10, 0.8), (11, 0.0), (12, 0.8), (13, 0.8)]:
        result = _cycle(champion, make_frame(1500, seed, shift=shift), policy)
        kinds.append(result.report.triage.kind)
        if seed == 13:
            failed = tracking.get_run(result.monitor_run).data.tags[RESULT]
            hook.status = 200
    assert kinds == ["emerging", "transient", "emerging", "covariate_shift"]
    assert "failed, tried again next cycle: drift by webhook: webhook http://127.0.0.1:" in failed
    assert "HTTP 500" in failed and "1 sent (drift by email)" in failed
    (first,) = hook.requests
    assert first["status"] == 500 and len(mailbox.messages) == 1
    # Still drifting, twice: nothing new, but the failed webhook is retried, same id.
    results = [_cycle(champion, make_frame(1500, seed, shift=0.8), policy) for seed in (14, 15)]
    assert [r.report.triage.kind for r in results] == ["covariate_shift"] * 2
    retry = hook.requests[1]
    assert len(hook.requests) == 2 and retry["status"] == 200
    assert retry["body"] == first["body"]
    assert (retry["headers"]["X-Driftctl-Delivery-Id"]
            == first["headers"]["X-Driftctl-Delivery-Id"])
    tags = [tracking.get_run(r.monitor_run).data.tags for r in results]
    assert tags[0][RESULT] == "alerts: 1 sent (drift by webhook)" and RESULT not in tags[1]
    # Every request is signed: checked here with hmac directly, and with verify.
    for r in hook.requests:
        assert r["headers"]["X-Driftctl-Signature"] == _independent_signature(
            r["headers"], r["body"])
        signing.verify_headers("Driftctl", SECRET, r["headers"], r["body"])
    drift = json.loads(retry["body"])
    assert drift["schema"] == "driftctl.alert.v1"
    assert {k: drift[k] for k in ("event", "status", "severity", "model", "version", "triage")} \
        == {"event": "drift", "status": "firing", "severity": "warning", "model": champion,
            "version": "1", "triage": "covariate_shift"}
    assert "x1 drifted" in drift["evidence"] and drift["summary"].startswith(
        "credit version 1: covariate shift confirmed")
    assert drift["delivery_id"] == retry["headers"]["X-Driftctl-Delivery-Id"]
    exp = tracking.experiment_id(champion)
    assert drift["links"]["run"] == (
        f"http://mlflow.example:5000/#/experiments/{exp}/runs/{drift['run_id']}")
    assert drift["links"]["version"] == "http://mlflow.example:5000/#/models/credit/versions/1"
    (mail,) = mailbox.messages
    assert mail["Subject"] == f"driftctl warning: {drift['summary']}"
    assert mail["Message-ID"] == f"<{drift['delivery_id']}@driftctl>"
    assert drift["links"]["run"] in mail.get_content()
    # Recovery (opted in), then a data-quality fault: sent at once, critical.
    assert _cycle(champion, make_frame(1500, 16), policy).report.triage.kind == "ok"
    broken = make_frame(1500, 17)
    broken["x2"] = broken["x2"] * 1000
    assert _cycle(champion, broken, policy).report.triage.kind == "data_quality"
    events_sent = [(b["event"], b["status"]) for b in hook.bodies()]
    assert events_sent == [("drift", "firing")] * 2 + [
        ("resolved", "resolved"), ("data_quality", "firing")]
    quality = hook.bodies()[-1]
    assert quality["severity"] == "critical" and "out of range" in quality["evidence"][0]
    assert [m["Subject"].split(":")[0] for m in mailbox.messages] == [
        "driftctl warning", "driftctl info", "driftctl critical"]
    # Still unresolved a day later: sent again, under a new delivery id.
    assert dispatch(champion, policy, now=time.time() + 25 * 3600)
    again = hook.bodies()[-1]
    assert (again["event"], again["repeat"]) == ("data_quality", 1)
    assert again["delivery_id"] != quality["delivery_id"]
    assert again["evidence"] == quality["evidence"]  # the fault's, not "x2 drifted"
    # No secret anywhere: not the signing key, not the webhook's token.
    logged = _everything_logged(champion) + capsys.readouterr().out
    assert SECRET not in logged and TOKEN not in logged and "127.0.0.1" in logged


@pytest.mark.slow
def test_a_cycle_with_a_webhook_but_no_secret_fails_before_writing(champion, receiver,
                                                                   monkeypatch):
    monkeypatch.delenv("DRIFTCTL_ALERT_SECRET", raising=False)
    log_batch(champion, make_frame(500, 3).drop(columns="y"))
    before = {r.info.run_id for r in runs_of(champion)}
    with pytest.raises(DriftctlError) as info:
        cycle(champion, policy=_policy(receiver))
    assert "DRIFTCTL_ALERT_SECRET" in info.value.problem
    assert "export DRIFTCTL_ALERT_SECRET" in info.value.fix
    assert {r.info.run_id for r in runs_of(champion)} == before


@pytest.mark.slow
def test_the_command_line_names_the_missing_secret_and_never_prints_the_url(
    champion, receiver, tmp_path, monkeypatch
):
    monkeypatch.delenv("DRIFTCTL_ALERT_SECRET", raising=False)
    path = tmp_path / "policy.toml"
    path.write_text(f"[alerts]\nwebhook = '{receiver.url}'\n")
    code, out, err = run_cli("promote", "--model", champion, "--policy", str(path))
    assert code == 2 and "DRIFTCTL_ALERT_SECRET" in err and "Traceback" not in err
    assert TOKEN not in out + err
    assert runs_of(champion) == []  # nothing written, not even the ledger


# -- registry events -----------------------------------------------------------------


def test_a_waiting_challenger_is_sent_once_with_its_version_link(champion, hook):
    policy = _policy(hook, format="slack")
    promote(champion, policy)  # adopts version 1 (a challenger of no champion is dropped)
    register(champion, baseline=False, seed=5, alias="challenger")
    said = promote(champion, policy)
    assert "version 2 awaits approval" in said[0] and "1 sent" in said[1]
    assert promote(champion, policy) == [said[0]]  # once per waiting version
    (request,) = hook.requests
    message = json.loads(request["body"])
    assert message["text"].startswith(":information_source: [driftctl] credit: version 2 waits")
    link = "http://mlflow.example:5000/#/models/credit/versions/2"
    assert link in json.dumps(message["blocks"])


def test_a_change_of_champion_is_sent_once_and_a_failure_is_retried(champion, hook):
    policy = _policy(hook)
    promote(champion, policy)  # driftctl first sees version 1: history, not news
    assert hook.requests == []
    register(champion, baseline=False, seed=5, alias="champion")  # moved by hand
    hook.status = 503
    said = promote(champion, policy)
    assert "promoted champion from version 1 to 2" in said[0]
    assert "1 failed" in said[-1] and "HTTP 503" in said[-1]
    hook.status = 200
    assert "1 sent (champion_changed by webhook)" in promote(champion, policy)[-1]
    assert promote(champion, policy) == []  # delivered: never sent again
    first, retry = hook.requests
    assert first["body"] == retry["body"]
    change = json.loads(retry["body"])
    assert (change["event"], change["version"], change["severity"]) == (
        "champion_changed", "2", "info")
    assert "promoted from version 1" in change["summary"]


def test_a_receiver_that_is_down_is_recorded_without_the_url(champion, hook):
    policy = _policy(hook)
    promote(champion, policy)
    down = Alerts(webhook=f"http://127.0.0.1:9/hooks/{TOKEN}")  # discard port: nobody there
    register(champion, baseline=False, seed=5, alias="challenger")
    said = promote(champion, Policy(alerts=down))
    assert "failed" in said[-1] and "webhook http://127.0.0.1:9:" in said[-1]
    assert TOKEN not in _everything_logged(champion) + repr(said)


def test_links_default_to_an_http_tracking_uri_without_its_credentials(monkeypatch):
    from controller.alerts import _ui

    for uri, ui in [
        ("http://user:pw@mlflow.example:5000/", "http://mlflow.example:5000"),
        ("https://mlflow.example/base", "https://mlflow.example/base"),
        ("sqlite:///mlflow.db", ""),  # no UI known: no links
    ]:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert _ui(Alerts()) == ui
    assert _ui(Alerts(ui_url="http://ui.example/")) == "http://ui.example"


# -- delivery failures -----------------------------------------------------------------


def _waiting(champion, policy):
    """A challenger waiting for approval: one notice due."""
    promote(champion, policy)
    register(champion, baseline=False, seed=5, alias="challenger")


def _outbox_tags(champion):
    (outbox,) = [r for r in runs_of(champion) if r.info.run_name == "alerts outbox"]
    return outbox.data


def test_an_exception_during_delivery_is_recorded_and_the_command_goes_on(
    champion, hook, smtp_server, mailbox
):
    policy = _policy(hook, smtp_server)
    _waiting(champion, policy)
    # A policy checked by an older release could hold what no delivery can send.
    bad = _policy(hook, smtp_server)
    object.__setattr__(bad.alerts, "sender", "evil@example.com\r\nBcc: all@example.com")
    said = promote(champion, bad)
    assert "1 sent (challenger_waiting by webhook)" in said[-1]
    assert "challenger_waiting by email: email: ValueError (attempt 1)" in said[-1]
    assert "evil" not in _everything_logged(champion) + repr(said)
    assert "1 sent (challenger_waiting by email)" in promote(champion, policy)[-1]
    assert len(mailbox.messages) == 1


def test_an_invalid_webhook_url_is_never_quoted():
    url = f"http://127.0.0.1:9/services/{TOKEN} x"  # a space: http.client quotes the path
    why = deliver.post(url, b"{}", "d-1", SECRET)
    assert why == "webhook http://127.0.0.1:9: the URL is not valid (not shown)"
    why = deliver.post(f"http://127.0.0.1:9/services/{TOKEN}\u00e9", b"{}", "d-1", SECRET)
    assert why is not None and TOKEN not in why


@pytest.mark.parametrize("status, location, shown", [
    (301, "https://hooks.example.net/v2/" + TOKEN, "https://hooks.example.net"),
    (302, "/moved/" + TOKEN, "http://127.0.0.1:{port}"),  # relative: the receiver itself
    (303, "http://hooks.example.net:8080/x", "http://hooks.example.net:8080"),
    (307, "/moved", "http://127.0.0.1:{port}"),
    (308, "http://h.example:99999/", "an address that is not valid"),
    (302, None, None),
])
def test_a_redirect_is_a_failed_attempt_not_followed(hook, status, location, shown):
    # Followed, a POST turns into a GET without the body: nothing was delivered.
    hook.status = status
    hook.reply_headers = {"Location": location} if location else {}
    why = deliver.post(hook.url, b"{}", "d-1", SECRET)
    assert [r["method"] for r in hook.requests] == ["POST"]
    where = f"webhook http://127.0.0.1:{hook.server_address[1]}: HTTP {status} redirect"
    if shown is None:
        assert why == f"{where} without a Location: configure the final URL"
    else:
        target = shown.format(port=hook.server_address[1])
        assert why == f"{where} to {target}, not followed: configure the final URL"
    assert TOKEN not in why


def test_a_subject_holds_no_line_break():
    payload = {**events.payload("m", events.Notice("drift", "drift/r/0", "r", "concept_drift",
                                                   "1"), summary="a\r\nBcc: x@example.com",
                                evidence=[], links={}, now=0)}
    assert deliver.email(payload, "", ("a@example.com",))["Subject"] == (
        "driftctl warning: a Bcc: x@example.com")


@contextlib.contextmanager
def _dripping(first: bytes, drip: bytes, *, reads_first: bool = True, every: float = 0.3):
    """A server on 127.0.0.1 that answers one connection with ``first``, then ``drip``
    every ``every`` seconds for 9 s: no read waits TIMEOUT, yet the answer never ends.
    Yields its port."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(10)

        def serve():
            with contextlib.suppress(OSError), server.accept()[0] as conn:
                if reads_first:
                    conn.recv(65536)
                conn.sendall(first)
                for _ in range(int(9 / every)):
                    time.sleep(every)
                    conn.sendall(drip)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(15)


# A TLS handshake record announced at 16 KiB: the client waits for all of it.
_TLS_RECORD = b"\x16\x03\x03\x40\x00"


def _mail() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = "driftctl@example.com", "oncall@example.com"
    msg.set_content("x")
    return msg


@pytest.mark.parametrize("scheme, first, drip, reads_first", [
    pytest.param("http", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b".", True,
                 id="http body"),
    pytest.param("https", _TLS_RECORD, b"\0", True, id="https handshake"),
    pytest.param("smtp", b"", b"220-still here\r\n", False, id="smtp greeting"),
    pytest.param("smtps", _TLS_RECORD, b"\0", True, id="smtps handshake"),
])
def test_a_receiver_that_trickles_is_cut_off_at_the_deadline(monkeypatch, scheme, first, drip,
                                                              reads_first):
    monkeypatch.setattr(deliver, "DEADLINE", 0.5)
    with _dripping(first, drip, reads_first=reads_first, every=0.2) as port:
        start = time.monotonic()
        if scheme.startswith("http"):
            why = deliver.post(f"{scheme}://127.0.0.1:{port}/x", b"{}", "d", SECRET)
        else:
            why = deliver.send(f"{scheme}://127.0.0.1:{port}", _mail())
        assert time.monotonic() - start < 3
    assert why.endswith(f"://127.0.0.1:{port}: no complete answer within 0.5 s")


def test_a_mail_server_that_floods_its_reply_is_cut_off(monkeypatch):
    # Each line is short enough for smtplib, but it kept every line of a reply: a server
    # sending them fast filled memory at about 200 MB/s until the deadline.
    monkeypatch.setattr(deliver, "DEADLINE", 3.0)
    with _dripping(b"", (b"220-" + b"x" * 1000 + b"\r\n") * 100, reads_first=False,
                   every=0.001) as port:
        start = time.monotonic()
        why = deliver.send(f"smtp://127.0.0.1:{port}", _mail())
        assert time.monotonic() - start < 2
    assert why.endswith(f"a reply of more than {deliver.MAX_RESPONSE // 1024} KiB")


@pytest.fixture
def plain_smtp():
    """An SMTP server that offers no STARTTLS yet accepts a login: what it was sent."""
    logins = []

    def authenticator(server, session, envelope, mechanism, data):
        from aiosmtpd.smtp import AuthResult

        logins.append(data)
        return AuthResult(success=True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    controller.logins = logins
    yield controller
    controller.stop()


def test_a_password_is_never_sent_without_starttls(champion, hook, plain_smtp, monkeypatch):
    monkeypatch.setenv("DRIFTCTL_SMTP_USERNAME", "driftctl")
    monkeypatch.setenv("DRIFTCTL_SMTP_PASSWORD", "pw-in-clear")
    policy = _policy(hook, plain_smtp)
    _waiting(champion, policy)
    said = promote(champion, policy)
    assert "offers no STARTTLS" in said[-1] and "pw-in-clear" not in said[-1]
    assert plain_smtp.logins == [] and plain_smtp.handler.messages == []


def test_an_attempt_in_progress_elsewhere_is_left_alone_and_done_is_never_scanned(
    champion, hook
):
    policy = _policy(hook)
    _waiting(champion, policy)
    hook.status = 503
    assert "1 failed" in promote(champion, policy)[-1]
    (delivery,) = [k.removeprefix("alert.") for k in _outbox_tags(champion).params
                   if k.startswith("alert.")]
    # Another controller claimed attempt 2 a moment ago and is sending it.
    run = next(r for r in runs_of(champion) if r.info.run_name == "alerts outbox").info.run_id
    tracking.write_param_once(run, f"try.{delivery}.webhook.2", f"{'a' * 32}@{time.time():.0f}")
    hook.status = 200
    assert promote(champion, policy)[-1].startswith("version 2 awaits")  # nothing sent
    assert len(hook.requests) == 1
    # Its controller stopped mid-attempt: after CLAIM_SECONDS, the next one is made.
    said = dispatch(champion, policy, now=time.time() + 200)
    assert said == ["alerts: 1 sent (challenger_waiting by webhook)"]
    outbox = _outbox_tags(champion)
    assert f"try.{delivery}.webhook.3" in outbox.params
    assert outbox.tags[f"done.{delivery}"] == "true"
    assert dispatch(champion, policy, now=time.time() + 400) == []
    assert len(hook.requests) == 2


def test_an_outbox_edited_by_hand_is_read_around_not_a_crash(champion, hook):
    # The outbox is a run anyone with edit rights can change: an entry it cannot read is
    # taken as absent, and the alerts go on.
    policy = _policy(hook)
    promote(champion, policy)
    run = next(r for r in runs_of(champion) if r.info.run_name == "alerts outbox").info.run_id
    for key, value in [("episode.drift", "{not json"), ("episode.data_quality", '{"a": 1}'),
                       ("ledger_seen", "many")]:
        tracking.set_run_tag(run, key, value)
    waiting = events.delivery_id(champion, "waiting/2")  # the notice due next
    for key, value in [("alert.x", "[]"), ("alert.y", "{not json"), ("try.x", "1"),
                       ("try.y.webhook.z", "1"), (f"try.{waiting}.webhook.1", "a@" + "9" * 5000)]:
        tracking.write_param_once(run, key, value)
    register(champion, baseline=False, seed=5, alias="challenger")
    said = promote(champion, policy)
    assert "1 sent (challenger_waiting by webhook)" in said[-1]
    assert len(hook.requests) == 1
    assert f"try.{waiting}.webhook.2" in _outbox_tags(champion).params
