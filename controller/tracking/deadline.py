"""A command bounded in time however the tracking server behaves: MLflow's retries sized
to the policy's deadline, and a watchdog that ends the command when the deadline passes.

MLflow's HTTP layer (``mlflow.utils.request_utils``) already retries every request, of any
method, on a connection error and on 408, 429, 500, 502, 503 and 504, with exponential
backoff (urllib3's: none before the first retry, then ``factor * 2**(n-1)`` seconds plus up
to ``MLFLOW_HTTP_REQUEST_BACKOFF_JITTER``), and waits ``MLFLOW_HTTP_REQUEST_TIMEOUT``
seconds for each answer. driftctl sizes those settings so that one request, retries
included, gives up within the deadline; what MLflow does not bound (a request per
artifact, the exit handlers that end an active run) the watchdog does.

Retried writes that are not idempotent are absorbed by the controller's state, not
prevented: a run created twice (the first answer lost) leaves one run nobody finishes,
which readers never see (they read FINISHED runs) and the next cycle's ``sweep`` marks
failed; a model version registered twice from one run is found by its run and the later
one deleted (``controller.loop.registry``); a decision is a parameter MLflow writes once.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

from controller.tracking.connection import shown_uri

_MAX_TIMEOUT = 120  # MLflow's default wait for one answer
_until: list[float] = []  # when the running command's watchdog ends it (time.time())
_action = threading.local()  # ``until``: the lease of the action this thread runs


def lease_until() -> float | None:
    """When the watchdog ends this command (seconds since the epoch), if one watches it,
    or the action this thread runs (``action_lease``): a run it leaves RUNNING after that
    has no process behind it."""
    return getattr(_action, "until", None) or (_until[-1] if _until else None)


@contextlib.contextmanager
def action_lease(until: float) -> Iterator[None]:
    """Runs the block as an action that ends by ``until`` (seconds since the epoch) at the
    latest: ``lease_until`` returns it in this thread, so the runs and claims the action
    makes carry it. For ``driftctl serve``, whose actions share one long-lived process
    that no command watchdog bounds."""
    previous = getattr(_action, "until", None)
    _action.until = until
    try:
        yield
    finally:
        _action.until = previous


def http_settings(deadline: float, retries: int) -> dict[str, str]:
    """MLflow's HTTP settings for a command of ``deadline`` seconds: ``retries`` retries,
    and a timeout and backoff (whole seconds: MLflow reads them as ints) that keep one
    request's worst case within the deadline: every try timing out takes half of it, the
    backoff at most a quarter."""
    half = deadline / 2
    # Not below 2 s: a busy server answering a large request in 1 s is no outage.
    timeout = max(2, min(_MAX_TIMEOUT, int(half / (retries + 1))))
    # The backoff before the n-th retry is factor * 2**(n-1), none before the first.
    waits = sum(2 ** (n - 1) for n in range(2, retries + 1))
    factor = next((f for f in (2, 1) if f * waits + retries <= half / 2), 0)
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(factor),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
    }


def apply_http_settings(deadline: float, retries: int) -> None:
    """Set MLflow's HTTP settings for this process; one the environment sets wins."""
    for key, value in http_settings(deadline, retries).items():
        os.environ.setdefault(key, value)


class Watchdog:
    """Ends the process when ``seconds`` pass: with one error on stderr, or, when the
    command has reported its outcome already (``settle``) and only its exit handlers are
    left, silently with the outcome's exit status."""

    def __init__(self, seconds: float, command: str, exit_status: int):
        self.seconds, self.command, self.exit_status = seconds, command, exit_status
        self._settled: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="driftctl-deadline", daemon=True)

    def start(self) -> Watchdog:
        _until.append(time.time() + self.seconds)
        self._thread.start()
        return self

    def settle(self, status: int) -> None:
        """The command reported its outcome: from here on the watchdog only bounds the
        exit handlers (an active run MLflow ends at exit against a server that is gone)."""
        self._settled = status

    def cancel(self) -> None:
        self._done.set()
        _until.clear()

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        if self._settled is not None:
            exit_now(self._settled)
        overran(
            self.command,
            "the command",
            f"the policy's deadline of {self.seconds:g} s",
            "",
            ", then run the command again (the next cycle finishes what this one left)",
            self.exit_status,
        )


def overran(command: str, what: str, limit: str, then: str, again: str, status: int):
    """End the process with one error: ``what`` did not finish within ``limit``; ``then``
    follows the cause, ``again`` says how to carry on."""
    print(
        f"driftctl {command}: error: {what} did not finish within {limit} (the tracking "
        f"server at {shown_uri()} did not answer in time, or the work took longer){then}\n"
        f"  fix: check that the tracking server is up and reachable{again}; a long retrain "
        "needs a longer [tracking] deadline in the policy",
        file=sys.stderr,
        flush=True,
    )
    exit_now(status)


def exit_now(status: int):
    """``os._exit``, after flushing what the process printed: ``os._exit`` skips the
    interpreter's flush, and a command's output (a --json summary) must reach its reader."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
