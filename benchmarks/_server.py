"""One ``mlflow server`` subprocess for the benchmarks: started on a free port of 127.0.0.1,
waited for until ``/health`` answers, stopped. (The tests have their own,
``tests/conftest.py::wait_until_healthy``, which scripts cannot import.)

    with mlflow_server(root, store="sqlite:///.../mlflow.db") as server:
        client = MlflowClient(server.url)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    port: int
    log: Path  # stdout and stderr, uvicorn's access lines included
    proc: subprocess.Popen

    def stop(self) -> None:
        """Terminate, and kill what has not left after 20 s."""
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start(root: Path, store: str, *, artifacts: Path | None = None, workers: int = 1,
          port: int | None = None, extra: tuple[str, ...] = (), env: dict | None = None,
          timeout: float = 240) -> Server:
    """``mlflow server`` on ``store``, run in ``root`` and logging to ``root/server.log``,
    serving artifacts from ``artifacts`` when given; returns once ``/health`` answers (20 to
    60 s on two busy cores). A server that exits or never answers is killed, and the error
    shows the end of its log."""
    port = port or free_port()
    log = root / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", store, "--workers", str(workers), *extra]
    if artifacts is not None:
        cmd += ["--artifacts-destination", str(artifacts)]
    with open(log, "wb") as out:  # the child holds its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env)
    server = Server(f"http://127.0.0.1:{port}", port, log, proc)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            how = (f"exited with status {proc.returncode}" if proc.poll() is not None
                   else f"did not answer /health within {timeout:.0f} s")
            server.stop()
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"mlflow server at {server.url} {how}; the end of {log}:\n{tail}")
        time.sleep(0.5)


@contextlib.contextmanager
def mlflow_server(root: Path, store: str, **options):
    """:func:`start`'s server, stopped on leaving."""
    server = start(root, store, **options)
    try:
        yield server
    finally:
        server.stop()
