"""A tracking server killed in the middle of a command: driftctl ends with one clear error
within its deadline, and the next cycle, against the restarted server, converges.

A real ``mlflow server`` is killed with SIGKILL while a ``driftctl`` subprocess is held at a
failpoint (``<point>:stop`` pauses it with SIGSTOP), then the command resumes against the
dead server; or, by a proxy between the two, half-way through an artifact upload's body.
The restarted server is a new process on the same store and artifact root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import mlflow
import pytest
from conftest import (
    _free_port,
    aliases,
    fit_model,
    ledger_of,
    make_frame,
    register,
    register_model,
    run_cli,
    runs_of,
    wait_until_healthy,
)
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.inputs.batches import log_batch
from controller.loop import registry
from controller.tracking.runs import LEASE, SWEPT

pytestmark = [pytest.mark.server, pytest.mark.slow]
# Seconds: the policy of the commands the tests cut off, and so their runs' lease, which
# the next cycle waits out. Their work under the watchdog (the imports come first) took 5
# to 7 s on two cores under a load of 10: a third of the deadline.
DEADLINE = 20
MLFLOW_HTTP = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
               "MLFLOW_HTTP_REQUEST_TIMEOUT")


class Servers:
    """``mlflow server`` processes on one store and artifact root, one serving at a time;
    the next one starts while the current one serves, so that a restart is quick."""

    def __init__(self, root: Path):
        self.root = root
        self.current = self._spawn()
        self.following = None

    def _spawn(self):
        port = _free_port()
        log = open(self.root / f"server-{port}.log", "wb")  # noqa: SIM115 - closed in stop
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True,  # its own process group: uvicorn runs in a child
            # No job runner (a dozen more processes): driftctl runs no server-side jobs.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        return proc, f"http://127.0.0.1:{port}", log

    def url(self) -> str:
        proc, url, log = self.current
        wait_until_healthy(url, proc, Path(log.name))
        return url

    def prepare(self) -> None:
        """Start the process a restart hands over to."""
        if self.following is None:
            self.following = self._spawn()

    def kill(self) -> None:
        """SIGKILL to the server and every process it started."""
        proc, _url, log = self.current
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()

    def restart(self) -> str:
        self.prepare()
        self.current, self.following = self.following, None
        return self.url()

    def stop(self) -> None:
        for server in (self.current, self.following):
            if server is not None and server[0].poll() is None:
                os.killpg(server[0].pid, signal.SIGKILL)
                server[0].wait()
                server[2].close()


class Cutter:
    """A TCP proxy on 127.0.0.1 to the serving server that cuts off the first artifact
    upload: it forwards the request and half its body, waits until the server stages the
    artifact, then kills the server and stops listening, as a dead server does."""

    UPLOAD = "/api/2.0/mlflow-artifacts/artifacts/"

    def __init__(self, servers: Servers):
        self.servers = servers
        self.upstream = ("127.0.0.1", int(servers.url().rsplit(":", 1)[1]))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cut: dict = {}  # the upload cut off: its artifact path, the files it staged
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn = self.listener.accept()[0]
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, socket.create_connection(self.upstream) as up:
            threading.Thread(target=_pump, args=(up, conn), daemon=True).start()
            while data := conn.recv(1 << 16):
                # The client waits for each answer, so a request starts a read.
                if data.startswith(b"PUT " + self.UPLOAD.encode()) and not self.cut:
                    self._cut_off(data, conn, up)
                    return
                up.sendall(data)

    def _cut_off(self, data: bytes, conn: socket.socket, up: socket.socket) -> None:
        while b"\r\n\r\n" not in data:
            data += conn.recv(1 << 16)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])
        while len(body) < length // 2:
            body += conn.recv(1 << 16)
        staging = self.servers.root / "artifacts"
        before = set(staging.rglob(".artifact.uploading.*"))
        up.sendall(head + b"\r\n\r\n" + body[: length // 2])
        started, staged = time.monotonic(), set()
        while not staged and time.monotonic() - started < 10:
            time.sleep(0.05)
            staged = set(staging.rglob(".artifact.uploading.*")) - before
        self.servers.kill()
        self.close()
        path = head.split(b" ", 2)[1].decode().removeprefix(self.UPLOAD)
        self.cut = {"path": path, "staged": staged}

    def close(self) -> None:
        """Stop listening: connections are refused, as by a dead server."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        self.listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(1 << 16):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, template_db):
    root = tmp_path_factory.mktemp("outage")
    shutil.copy(template_db, root / "mlflow.db")
    servers = Servers(root)
    yield servers
    servers.stop()


@pytest.fixture
def at(servers, monkeypatch, tmp_path):
    """Point this process and the CLI at the serving server; returns a function that does
    it again after a restart. MLflow's HTTP settings come from the policy."""
    for key in MLFLOW_HTTP:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def point(url: str) -> str:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        mlflow.set_tracking_uri(url)
        return url

    point(servers.url())
    servers.prepare()  # warms up while the test sets up
    yield point
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture
def policy(tmp_path) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(f'[tracking]\ndeadline = "{DEADLINE}s"\nretries = 1\n')
    return str(path)


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def _killed_at(servers: Servers, point: str, *args: str) -> tuple[float, str]:
    """Run ``driftctl *args`` until ``point``, kill the server there, let the command go
    on; returns how long the command took in all and what it wrote on stderr."""
    servers.prepare()  # the restart's server warms up while the command works
    started = time.monotonic()
    proc = run_cli(*args, env={"DRIFTCTL_FAILPOINT": f"{point}:stop"}, wait=False)
    while not _stopped(proc.pid):
        assert proc.poll() is None, (f"ended before {point}", proc.communicate())
        time.sleep(0.1)
    servers.kill()
    proc.send_signal(signal.SIGCONT)
    return _ended(proc, started)


def _killed_mid_upload(servers: Servers, *args: str) -> tuple[float, str, dict]:
    """Run ``driftctl *args`` through a ``Cutter``; as ``_killed_at``, with the upload
    cut off."""
    servers.prepare()
    proxy = Cutter(servers)
    started = time.monotonic()
    proc = run_cli(*args, env={"MLFLOW_TRACKING_URI": proxy.url}, wait=False)
    try:
        took, err = _ended(proc, started)
    finally:
        proxy.close()
    assert proxy.cut, ("no artifact upload went through the proxy", err)
    return took, err, proxy.cut


def _ended(proc: subprocess.Popen, started: float) -> tuple[float, str]:
    _out, err = proc.communicate(timeout=3 * DEADLINE)
    took = time.monotonic() - started
    assert proc.returncode == 2, err
    return took, err


def _one_clear_error(err: str, command: str) -> None:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"driftctl {command}: error:"), err
    assert "Traceback" not in err and "\n  fix: " in err, err


def _await_lease(run) -> None:
    """Wait until the deadline of the command that left ``run`` has passed."""
    until = datetime.fromisoformat(run.data.tags[LEASE]).timestamp()
    time.sleep(max(0.0, until - time.time() + 1))


def _running(model: str) -> list:
    return [r for r in runs_of(model) if r.info.status == "RUNNING"]


def _readable_artifacts(run_id: str) -> list[str]:
    """The artifacts a reader of ``run_id`` finds (through the server), each checked to be
    whole: JSON that parses, HTML and SVG up to their closing tag."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(MlflowClient().download_artifacts(run_id, "", tmp))
        found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        for name in found:
            text = (root / name).read_text()
            if name.endswith(".json"):
                json.loads(text)
            elif name.endswith((".html", ".svg")):
                assert text.rstrip().endswith(("</html>", "</svg>")), (name, text[-200:])
    return found


def test_kills_while_monitoring_end_in_one_error_and_the_next_cycle_converges(
        servers, at, policy):
    register("outage")
    log_batch("outage", make_frame(500, 60).drop(columns="y"))

    # The server dies once the monitor run exists, before anything is logged in it.
    took, err = _killed_at(servers, "started-monitor", *_cycle("outage", policy))
    assert took < DEADLINE + 10, took  # the watchdog starts after the imports
    _one_clear_error(err, "cycle")
    at(servers.restart())
    (left,) = _running("outage")
    assert left.data.tags[tracking.KIND] == "monitor"

    # The cycle claimed the window before it started the run and could not give the claim
    # up: cycles of the model stand down until its lease, the command's deadline, ends.
    # Meanwhile, on a second model, the server dies as the cycle is about to upload the
    # monitor run's first artifact.
    register("outage-upload", seed=2)
    log_batch("outage-upload", make_frame(500, 61).drop(columns="y"))
    took, err = _killed_at(servers, "artifact-upload", *_cycle("outage-upload", policy))
    assert took < DEADLINE + 10, took
    _one_clear_error(err, "cycle")
    at(servers.restart())

    # Back on the first model once its claim has lapsed: the server dies half-way through
    # that upload's body, once it has started writing the file.
    _await_lease(left)
    took, err, cut = _killed_mid_upload(servers, *_cycle("outage", policy))
    assert took < DEADLINE + 10, took
    _one_clear_error(err, "cycle")
    assert cut["staged"], cut
    at(servers.restart())
    # The server died with a part of the artifact on disk; no reader finds it.
    _experiment, cut_run, _root, artifact = cut["path"].split("/", 3)
    assert all(p.exists() for p in cut["staged"]), cut
    assert artifact not in _readable_artifacts(cut_run)

    (left,) = _running("outage")  # the first one was swept as this cycle started
    _await_lease(left)
    # The next cycles, side by side, with the default deadline (half an hour).
    cycles = [run_cli("cycle", "--model", m, wait=False) for m in ("outage", "outage-upload")]
    for proc in cycles:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert cut_run in {r.info.run_id for r in _converged("outage", cut_off=2)}
    _converged("outage-upload", cut_off=1)


def _cycle(model: str, policy: str) -> tuple[str, ...]:
    return ("cycle", "--model", model, "--policy", policy)


def _converged(model: str, cut_off: int) -> list:
    """Check that ``model`` has one finished monitor run, with every artifact whole, and
    the ``cut_off`` runs the kills left swept, for the same window; returns those."""
    monitors = runs_of(model, "monitor")
    finished = [r for r in monitors if r.info.status == "FINISHED"]
    failed = [r for r in monitors if r.info.status == "FAILED"]
    assert len(finished) == 1 and len(failed) == cut_off, [r.info.status for r in monitors]
    assert len({r.data.tags[tracking.TAG + "window_end"] for r in monitors}) == 1
    assert all("killed or lost the tracking server" in r.data.tags[SWEPT] for r in failed)
    assert not _running(model)
    assert {"driftctl/summary.json", "driftctl/report.html"} <= set(
        _readable_artifacts(finished[0].info.run_id))
    for run in failed:  # whatever they hold is whole too
        _readable_artifacts(run.info.run_id)
    return failed


def test_a_kill_between_promotion_steps_is_finished_by_the_next_cycle(servers, at, policy):
    register("outage-promote", seed=5)
    registry.reconcile("outage-promote")  # driftctl manages it: version 1 is adopted
    model = fit_model(make_frame(3000, 7))
    version = register_model("outage-promote", model, make_frame(2000, 9),
                             alias="challenger", target="y")[0]
    MlflowClient().set_model_version_tag("outage-promote", version, "approval", "approved")
    log_batch("outage-promote", make_frame(500, 8).drop(columns="y"))

    took, err = _killed_at(servers, "between-aliases", "promote", "--model",
                           "outage-promote", "--policy", policy)
    assert took < DEADLINE + 10, took
    _one_clear_error(err, "promote")
    at(servers.restart())
    assert aliases("outage-promote") == {"champion": "1", "previous-champion": "1",
                                         "challenger": "2"}

    code, _out, err = run_cli("cycle", "--model", "outage-promote")
    assert code == 0, err
    assert aliases("outage-promote") == {"champion": "2", "previous-champion": "1"}
    promotions = [v for k, v in ledger_of("outage-promote").items()
                  if k.startswith("champion.") and v.startswith("promote")]
    assert promotions == ["promote 1 -> 2: approved in the registry (tag approval=approved)"]
    found = MlflowClient().search_model_versions("name = 'outage-promote'")
    assert sorted(str(v.version) for v in found) == ["1", "2"]
    assert not _running("outage-promote")


def test_a_server_that_never_answers_ends_the_command_at_its_deadline(tmp_path, monkeypatch):
    """A server that accepts connections and never answers (hung, or behind a proxy that
    holds them): each request waits for its timeout, and the watchdog ends the command.
    Three tries of 2 s (the shortest timeout driftctl sets) outlast the 4 s deadline, so
    the watchdog, not MLflow's error, ends it."""
    for key in MLFLOW_HTTP:
        monkeypatch.delenv(key, raising=False)
    held = []
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        threading.Thread(target=_hold, args=(hole, held), daemon=True).start()
        uri = f"http://127.0.0.1:{hole.getsockname()[1]}"
        path = tmp_path / "policy.toml"
        path.write_text('[tracking]\ndeadline = "4s"\nretries = 2\n')
        started = time.monotonic()
        code, _out, err = run_cli("cycle", "--model", "m", "--tracking-uri", uri,
                                  "--policy", str(path))
        took = time.monotonic() - started
    assert code == 2 and "did not finish within the policy's deadline of 4 s" in err, err
    _one_clear_error(err, "cycle")
    assert took < 4 + 10, took  # the imports come first
    for conn in held:
        conn.close()


def _hold(listener: socket.socket, held: list) -> None:
    """Accept connections and never answer, until ``listener`` is closed."""
    with contextlib.suppress(OSError):
        while True:
            held.append(listener.accept()[0])
