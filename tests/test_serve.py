"""``driftctl serve`` against a real ``mlflow server``: the server's webhook carries a
person's approval to the service, which promotes at once; what it cannot verify, or what
the registry does not confirm, moves nothing."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime

import pytest
from conftest import _free_port, aliases, ledger_of, make_frame, register, run_cli, runs_of
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from controller import signing
from controller._errors import DriftctlError
from controller.service import parse_every
from controller.service.receiver import MAX_HANDLERS, MAX_HEAD, PROBE_HANDLERS, Deliveries
from controller.tracking.runs import LEASE

pytestmark = pytest.mark.server

MODEL = "srv-serve"
SECRET = "s3cret-for-tests-only-7f3a"
ENV = {"DRIFTCTL_WEBHOOK_SECRET": SECRET}


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _post(url: str, event: dict, *, secret: str = SECRET, timestamp: int | None = None,
          delivery: str | None = None, signature: str | None = None) -> tuple[int, dict]:
    """Deliver ``event`` as MLflow does: headers, and the signature unless one is given."""
    body = json.dumps(event)
    stamp, delivery = str(timestamp or int(time.time())), delivery or str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-MLflow-Timestamp": stamp,
               "X-MLflow-Delivery-Id": delivery,
               "X-MLflow-Signature": signature or signing.sign(secret, delivery, stamp, body)}
    request = urllib.request.Request(url, data=body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _approval(version: str, value: str = "approved", model: str = MODEL) -> dict:
    return {"entity": "model_version_tag", "action": "set", "timestamp": "2026-11-30T00:00:00",
            "data": {"name": model, "version": version, "key": "approval", "value": value}}


def _until(check, seconds: float = 30, what: str = ""):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)
    return found


def _start(*args: str, port: int):
    """``driftctl serve`` as a real process, once its /health answers."""
    proc = run_cli("serve", *args, "--port", str(port), env=ENV, wait=False)

    def up():
        assert proc.poll() is None, proc.communicate()[1]
        try:
            return _get(f"http://127.0.0.1:{port}/health")[0] == 200
        except OSError:
            return False

    _until(up, 90, "serve answers /health")
    return proc


@pytest.fixture(scope="module")
def service(mlflow_server):
    """``driftctl serve --model srv-serve`` (no schedule: only webhooks make it act), its
    webhook installed, and a champion: (process, base URL)."""
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    try:
        register(MODEL, baseline=False)
    finally:
        mlflow.set_tracking_uri(None)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**ENV, "MLFLOW_TRACKING_URI": mlflow_server}
    rc, out, err = run_cli("webhook", "install", "--model", MODEL,
                           "--url", f"{base}/mlflow-webhook", env=env)
    assert rc == 0 and "created webhook driftctl-srv-serve" in out, err
    proc = _start("--model", MODEL, "--tracking-uri", mlflow_server, port=port)
    _idle(base)  # its first promote adopts the champion
    yield proc, base
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    client = MlflowClient(mlflow_server)
    for hook in client.list_webhooks():
        if hook.name == f"driftctl-{MODEL}":
            client.delete_webhook(hook.webhook_id)


def _challenger(model: str = MODEL) -> str:
    """A new version of ``model`` waiting for approval, as a passed retrain leaves it."""
    client = MlflowClient()
    champion = client.get_model_version_by_alias(model, "champion")
    mv = client.create_model_version(model, f"models:/{model}/{champion.version}")
    client.set_model_version_tag(model, mv.version, "driftctl.status", "awaiting-approval")
    # Compared with this champion: a change of champion would supersede it.
    client.set_model_version_tag(model, mv.version, "driftctl.champion_version",
                                 str(champion.version))
    client.set_registered_model_alias(model, "challenger", mv.version)
    return str(mv.version)


def _raw(port: int, request: bytes) -> bytes:
    """What the service answers to ``request`` sent as bytes (headers urllib would refuse)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(65536)


def _idle(base: str, after: int = 0) -> dict:
    """The service's health once it has done more than ``after`` actions and is idle."""

    def done():
        health = _get(f"{base}/health")[1]
        return health if health["actions"] > after and not health["queue"] and not health[
            "running"] else None

    return _until(done, 30, "the service is idle")


def test_an_approval_in_the_registry_promotes_at_once(service, server_uri):
    _, base = service
    version = _challenger()
    before = aliases(MODEL)["champion"]
    MlflowClient().set_model_version_tag(MODEL, version, "approval", "approved")
    # No promote or cycle runs anywhere: only MLflow's webhook reaches the service.
    started = time.monotonic()
    _until(lambda: aliases(MODEL).get("champion") == version, 20, "champion moves")
    assert time.monotonic() - started < 15
    assert aliases(MODEL).get("previous-champion") == before
    assert f"promote {before} -> {version}: approved in the registry" in " ".join(
        ledger_of(MODEL).values())
    health = _idle(base)
    assert health["last_action"] == "promote" and health["model"] == MODEL


def test_a_rejection_is_recorded(service, server_uri):
    version = _challenger()
    champion = aliases(MODEL)["champion"]
    MlflowClient().set_model_version_tag(MODEL, version, "approval", "rejected")
    _until(lambda: MlflowClient().get_model_version(MODEL, version).tags.get(
        "driftctl.status") == "rejected", 20, "the rejection is recorded")
    assert aliases(MODEL)["champion"] == champion and "challenger" not in aliases(MODEL)
    assert ledger_of(MODEL)[f"rejected.{version}"].startswith("rejected in the registry")


def test_what_cannot_be_verified_or_is_not_in_the_registry_moves_nothing(service, server_uri):
    _, base = service
    url = f"{base}/mlflow-webhook"
    before = _idle(base)["actions"]
    version = _challenger()
    done = _idle(base, after=before)["actions"]  # the new version's webhook, acted on
    event = _approval(version)
    now = int(time.time())
    assert _post(url, event, secret="a guess")[0] == 401
    assert _post(url, event, signature="v1,")[0] == 401
    assert _post(url, event, timestamp=now - 400)[0] == 401  # stale, yet correctly signed
    assert _post(url, event, timestamp=now + 400)[0] == 401  # from the future
    request = urllib.request.Request(url, data=json.dumps(event).encode())  # no headers
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 401
    unsigned.value.close()
    health = _get(f"{base}/health")[1]
    assert health["actions"] == done and health["queue"] == 0 and not health["running"]

    # Correctly signed, but the registry holds no approval: the hint moves nothing.
    delivery = str(uuid.uuid4())
    status, reply = _post(url, event, delivery=delivery)
    assert status == 202 and reply["status"] in ("queued", "already queued")
    health = _idle(base, after=done)
    assert "awaits approval" in health["last_result"]
    assert aliases(MODEL)["challenger"] == version
    assert aliases(MODEL)["champion"] != version
    # The same delivery again is a replay.
    assert _post(url, event, delivery=delivery)[0] == 409
    # Another model's events, and other tags, are not this service's business.
    assert _post(url, _approval("1", model="someone-else")) == (200, {
        "status": "ignored", "detail": f"not an approval or a new version of {MODEL!r}"})
    other_tag = {**event, "data": {**event["data"], "key": "driftctl.status"}}
    assert _post(url, other_tag)[1]["status"] == "ignored"
    assert _get(f"{base}/health")[1]["actions"] == health["actions"]


def test_health_and_unknown_paths(service):
    _, base = service
    status, health = _get(f"{base}/health")
    assert status == 200
    assert {"model", "last_action", "last_action_at", "last_error", "queue"} <= set(health)
    assert health["model"] == MODEL and health["every_seconds"] is None
    assert _get(f"{base}/nothing-here")[0] == 404
    assert _post(f"{base}/elsewhere", _approval("1"))[0] == 404


def test_webhook_install_is_idempotent(service, server_uri):
    _, base = service
    url = f"{base}/mlflow-webhook"

    def installed() -> list:
        return [w for w in MlflowClient().list_webhooks() if w.name == f"driftctl-{MODEL}"]

    rc, out, err = run_cli("webhook", "install", "--model", MODEL, "--url", url, env=ENV)
    assert rc == 0 and "nothing changed" in out, err
    assert [w.url for w in installed()] == [url]
    moved = "http://127.0.0.1:9/mlflow-webhook"
    rc, out, err = run_cli("webhook", "install", "--model", MODEL, "--url", moved, env=ENV)
    assert rc == 0 and "updated webhook" in out and f"(was {url})" in out, err
    assert [w.url for w in installed()] == [moved]
    assert sorted(str(e) for e in installed()[0].events) == [
        "model_version.created", "model_version_tag.set"]
    rc, out, err = run_cli("webhook", "install", "--model", MODEL, "--url", url, env=ENV)
    assert rc == 0 and "updated webhook" in out, err
    assert [w.url for w in installed()] == [url]


def test_connections_beyond_the_handlers_are_answered_503(service):
    _, base = service
    port = int(base.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5)
            for _ in range(MAX_HANDLERS + PROBE_HANDLERS)]  # connect and send nothing
    try:
        busy = _raw(port, b"GET /health HTTP/1.0\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503") and b"retry later" in busy
    finally:
        for conn in idle:
            conn.close()
    _until(lambda: _get(f"{base}/health")[0] == 200, 10, "handlers are free again")


@contextlib.contextmanager
def _receiver(worker=None):
    """A receiver on a free port of 127.0.0.1, in this process: its base URL."""
    from controller.policy import Policy
    from controller.service.receiver import Receiver
    from controller.service.worker import Worker

    with Receiver(("127.0.0.1", 0), MODEL, SECRET, worker or Worker(MODEL, Policy())) as r:
        listener = threading.Thread(target=r.serve_forever, daemon=True)
        listener.start()
        try:
            yield f"http://127.0.0.1:{r.server_port}"
        finally:
            r.shutdown()
            listener.join()


def _cut(conn: socket.socket) -> bool:
    """Whether the service has closed ``conn``."""
    conn.settimeout(0.1)
    try:
        return conn.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:  # reset: it closed with our trickle unread
        return True


@pytest.mark.slow
def test_slow_clients_are_cut_off_and_never_starve_the_health_probe(monkeypatch):
    from controller.service import receiver

    monkeypatch.setattr(receiver._Handler, "deadline", 3.0)
    with _receiver() as base:
        port = int(base.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5)
                for _ in range(MAX_HANDLERS)]
        try:
            started = time.monotonic()
            for conn in slow:
                conn.sendall(b"POST /mlflow-webhook HTTP/1.1\r\n")
            # A header byte every half second each: no read ever waits long enough to time out.
            while not all(_cut(conn) for conn in slow):
                assert time.monotonic() - started < 3.0 + 2, "the slow clients were not cut off"
                for conn in slow:
                    with contextlib.suppress(OSError):
                        conn.sendall(b"X")
                assert _get(f"{base}/health")[0] == 200  # on its own handler
                time.sleep(0.5)
            assert time.monotonic() - started > 3.0 - 0.5
        finally:
            for conn in slow:
                conn.close()
        # Their handlers are free again for deliveries.
        assert _post(f"{base}/mlflow-webhook", _approval("1"), secret="a guess")[0] == 401
        # Headers beyond the limit are refused before they are parsed.
        head = b"GET /health HTTP/1.1\r\nX-Pad: " + b"a" * MAX_HEAD + b"\r\n\r\n"
        assert _raw(port, head).startswith(b"HTTP/1.0 431")


def test_sigterm_stops_the_service_cleanly(service):
    proc, base = service
    assert _post(f"{base}/mlflow-webhook", _approval("1"), secret="a guess")[0] == 401
    # A folded header would write a line of its own if an unverified id were logged.
    forged = (b"POST /mlflow-webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
              b"X-MLflow-Delivery-Id: unverified-id\r\n 2026-11-30T00:00:00+00:00 driftctl serve: "
              b"promote (forged) done\r\n\r\n{}")
    assert _raw(int(base.rsplit(":", 1)[1]), forged).startswith(b"HTTP/1.0 401")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    assert "stopped" in err.splitlines()[-1]
    assert "POST /mlflow-webhook 401 signature does not match" in err
    assert "POST /mlflow-webhook 401 header X-MLflow-Signature is missing" in err
    # (an id no real delivery can hold: MLflow's are uuid4s, which may contain "d-1")
    assert "forged" not in err and "unverified-id" not in err
    assert SECRET not in err


@pytest.mark.slow
def test_every_runs_cycles_approvals_wait_for_them_and_sigterm_lets_one_finish(server_uri):
    from controller.inputs.batches import log_batch

    model = "srv-serve-every"
    register(model)
    port = _free_port()
    proc = _start("--model", model, "--every", "2s", port=port)
    base = f"http://127.0.0.1:{port}"

    def monitoring() -> None:
        """Log a batch and return while a cycle that reads it (a slow one) runs."""
        health = _get(f"{base}/health")[1]
        after = health["actions"] + (health["running"] is not None)
        log_batch(model, make_frame(400, 5).drop(columns="y"))
        _until(lambda: (h := _get(f"{base}/health")[1])["running"] == "cycle"
               and h["actions"] >= after, 30, "a cycle after the batch runs")
        time.sleep(0.3)  # past the cycle's own reading of the registry

    try:
        # No batch yet: the cycle fails, is reported, and the next one comes all the same.
        failed = _idle(base)
        assert "no production batches" in failed["last_error"] and failed["every_seconds"] == 2
        version = _challenger(model)
        monitoring()
        # A person's decision during the cycle is queued, and carried out once it is done.
        MlflowClient().set_model_version_tag(model, version, "approval", "rejected")
        status, reply = _post(f"{base}/mlflow-webhook", _approval(version, "rejected", model))
        assert (status, reply["status"]) == (202, "queued")
        _until(lambda: f"rejected.{version}" in ledger_of(model), 60, "the rejection")
        monitoring()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    monitors = runs_of(model, "monitor")
    assert len(monitors) == 2
    # Each carries its cycle's lease: a cycle beside the service sweeps none of them early.
    for run in monitors:
        lease = datetime.fromisoformat(run.data.tags[LEASE]).timestamp()
        assert 0 < lease - run.info.start_time / 1000 <= 30 * 60 + 60 + 1
    lines = err.splitlines()
    queued = next(i for i, line in enumerate(lines) if "POST /mlflow-webhook 202" in line)
    assert "cycle (scheduled) done" in lines[queued + 1]
    assert f"promote (model_version_tag.set: version {version}" in lines[queued + 2]
    assert f"version {version} rejected in the registry" in lines[queued + 2]
    # SIGTERM during the second cycle: it finishes, and only then does the service stop.
    assert "stopping" in lines[-3] and "cycle (scheduled) done" in lines[-2], err
    assert "stopped" in lines[-1] and "cycle (scheduled) FAILED" in err


def test_a_failing_store_is_retried_and_its_credentials_never_shown(tmp_path):
    dead = _free_port()  # nothing listens there
    port = _free_port()
    proc = run_cli("serve", "--model", MODEL, "--port", str(port), "--tracking-uri",
                   f"http://alice:hunter2@127.0.0.1:{dead}",
                   env={**ENV, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}, wait=False)
    try:
        health = _until(lambda: _health_after_failure(port), 60, "the start-up promote fails")
        assert health["last_error"].startswith("promote: TrackingError: MLflow (http://***@")
        assert health["promote_retry_at"] and "hunter2" not in json.dumps(health)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "promote: trying again in 10 s" in err, err
    assert "hunter2" not in err and "alice" not in err


def _health_after_failure(port: int) -> dict | None:
    try:
        health = _get(f"http://127.0.0.1:{port}/health")[1]
    except OSError:
        return None
    return health if health["last_error"] else None


def test_without_a_secret_or_a_tracking_server_it_refuses(sqlite_uri, tmp_path):
    rc, _, err = run_cli("serve", "--model", MODEL, env={"DRIFTCTL_WEBHOOK_SECRET": ""})
    assert rc == 2 and "DRIFTCTL_WEBHOOK_SECRET is not set" in err
    policy = tmp_path / "policy.toml"
    policy.write_text('[alerts]\nwebhook = "https://hooks.example.com/driftctl"\n')
    rc, _, err = run_cli("serve", "--model", MODEL, "--policy", str(policy),
                         env={**ENV, "DRIFTCTL_ALERT_SECRET": ""})
    assert rc == 2 and "DRIFTCTL_ALERT_SECRET is not" in err  # before it listens
    rc, _, err = run_cli("webhook", "install", "--model", MODEL, "--url",
                         "http://127.0.0.1:8787/mlflow-webhook", env=ENV)
    assert rc == 2 and "fire only inside a tracking server" in err and "mlflow server" in err
    assert "Traceback" not in err


def test_signatures_are_mlflows_and_replays_are_remembered_within_bounds():
    body = json.dumps(_approval("3"))
    assert signing.sign(SECRET, "d-1", "1700000000", body) == _generate_hmac_signature(
        SECRET, "d-1", "1700000000", body)
    signing.verify(SECRET, signing.sign(SECRET, "d-1", "1700000000", body), "d-1",
                   "1700000000", body.encode(), now=1700000299)
    with pytest.raises(signing.BadSignature):
        signing.verify(SECRET, signing.sign(SECRET, "d-1", "1700000000", body), "d-1",
                       "1700000000", body, now=1700000301)

    seen = Deliveries(max_age=300, limit=2)
    assert [seen.admit(d, "1000", now=1000) for d in ("a", "a", "b", "c")] == [
        "new", "replay", "new", "full"]
    assert seen.admit("c", "1400", now=1400) == "new"  # a and b aged out of the window
    assert seen.admit("a", "1400", now=1400) == "new"
    assert [parse_every(t) for t in ("90s", "30m", "1h")] == [90, 1800, 3600]
    for bad in ("1", "0s", "h", "1w"):
        with pytest.raises(DriftctlError):
            parse_every(bad)


def test_a_cycle_that_stands_down_says_another_holds_the_window():
    from controller.loop.cycle import CycleResult
    from controller.service.worker import _cycle_words

    held = CycleResult(("nothing to promote",), "", None, None,
                       held_until="2026-11-30T12:00:00+00:00")
    assert _cycle_words(held) == [
        "nothing to promote",
        "another cycle is monitoring this window (claim until 2026-11-30T12:00:00+00:00)"]


def test_a_delivery_refused_while_stopping_is_accepted_when_retried():
    """MLflow retries a 503 with the same delivery id and timestamp: that is no replay."""
    from controller.policy import Policy
    from controller.service.receiver import WEBHOOK_PATH, Receiver
    from controller.service.worker import Worker

    body = json.dumps(_approval("2"))
    stamp, delivery = str(int(time.time())), str(uuid.uuid4())
    headers = {"X-MLflow-Timestamp": stamp, "X-MLflow-Delivery-Id": delivery,
               "X-MLflow-Signature": signing.sign(SECRET, delivery, stamp, body)}
    stopping = Worker(MODEL, Policy())
    stopping.stop()
    with Receiver(("127.0.0.1", 0), MODEL, SECRET, stopping) as first:
        for _ in range(2):  # refused, then retried while the service still stops
            status, reply, _ = first.receive(WEBHOOK_PATH, headers, body.encode())
            assert (status, reply["error"]) == (503, "the service is stopping; retry later")
        # The next service, on the same delivery state: accepted, then a replay.
        with Receiver(("127.0.0.1", 0), MODEL, SECRET, Worker(MODEL, Policy())) as second:
            second.deliveries = first.deliveries
            assert second.receive(WEBHOOK_PATH, headers, body.encode())[0] == 202
            assert second.receive(WEBHOOK_PATH, headers, body.encode())[0] == 409


def test_each_action_holds_its_own_lease_in_its_thread():
    from controller import tracking
    from controller.tracking.deadline import lease_until

    assert lease_until() is None
    seen = {}

    def action(name: str, until: float) -> None:
        with tracking.action_lease(until):
            time.sleep(0.1)  # both hold a lease at once
            seen[name] = (lease_until(), tracking.lease(60))

    threads = [threading.Thread(target=action, args=(n, u))
               for n, u in (("a", 2_000_000_000.0), ("b", 2_000_000_100.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": (2_000_000_000.0, "2033-05-18T03:33:20+00:00"),
                    "b": (2_000_000_100.0, "2033-05-18T03:35:00+00:00")}
    assert lease_until() is None


def _trickle(listener: socket.socket) -> None:
    """A tracking server that answers one header byte a second and never ends the headers;
    it has no basic-auth (the permission check is answered 404 at once)."""

    def drip(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            if b"/users/current " in conn.recv(65536).split(b"\r\n", 1)[0]:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while True:
                time.sleep(1)
                conn.sendall(b"a")

    with contextlib.suppress(OSError):
        while True:
            threading.Thread(target=drip, args=(listener.accept()[0],), daemon=True).start()


@pytest.mark.slow
def test_an_action_past_its_deadline_fails_health_then_ends_the_service(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[tracking]\ndeadline = "6s"\nretries = 0\n')  # a grace of 3 s
    port = _free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        threading.Thread(target=_trickle, args=(listener,), daemon=True).start()
        proc = run_cli("serve", "--model", MODEL, "--port", str(port), "--policy", str(policy),
                       "--tracking-uri", f"http://127.0.0.1:{listener.getsockname()[1]}",
                       env=ENV, wait=False)
        try:
            answers = []

            def overdue() -> dict | None:
                try:
                    status, health = _get(f"http://127.0.0.1:{port}/health")
                except OSError:
                    assert proc.poll() is None, proc.communicate()
                    return None
                answers.append((status, health["running"]))
                return health if status == 503 else None

            health = _until(overdue, 90, "/health reports the promote past its deadline")
            unhealthy = time.monotonic()
            _, err = proc.communicate(timeout=30)
            ended = time.monotonic() - unhealthy
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    # Healthy while the start-up promote was within its deadline, then not.
    assert answers[0] == (200, "promote") and health["running"] == "promote"
    assert "within the policy's deadline of 6 s" in health["error"], health
    assert proc.returncode == 2 and ended < 3 + 3, (ended, err)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(
        "driftctl serve: error: the promote (start-up) did not finish within the policy's "
        "deadline of 6 s, nor 3 s after it"), err
    assert "\n  fix: " in err and "Traceback" not in err
