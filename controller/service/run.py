"""``driftctl serve``: the receiver, the worker and the schedule together, until a signal."""

from __future__ import annotations

import os
import signal
import threading

from controller import alerts, tracking
from controller._errors import DriftctlError
from controller.policy import Policy, parse_duration
from controller.service.receiver import WEBHOOK_PATH, Receiver
from controller.service.worker import PROMOTE, Worker, log

SECRET_ENV = "DRIFTCTL_WEBHOOK_SECRET"


def secret() -> str:
    """The secret MLflow signs deliveries with, from ``DRIFTCTL_WEBHOOK_SECRET``."""
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        raise DriftctlError(
            f"{SECRET_ENV} is not set: it is the secret MLflow signs its webhook deliveries "
            "with",
            f"set the same value for `driftctl webhook install` and `driftctl serve`, e.g. "
            f"export {SECRET_ENV}=$(openssl rand -hex 32)",
        )
    return value


def parse_every(text: str) -> float:
    """Seconds in an interval written ``90s``, ``30m``, ``1h`` or ``1d``."""
    try:
        return parse_duration((text or "").strip())
    except ValueError:
        raise DriftctlError(
            f"--every {text!r} is not an interval", "write a number and a unit: 90s, 30m, 1h"
        ) from None


def serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    every: str | None = None,
    policy: Policy | None = None,
) -> None:
    """Receive MLflow's registry webhooks for ``model`` and act on them, one action at a
    time, with a ``cycle`` every ``every`` too; return after SIGTERM or SIGINT, once the
    action in progress is done."""
    key = secret()
    seconds = parse_every(every) if every is not None else None
    policy = policy or Policy()
    # As the command line does: one request gives up within an action's deadline.
    tracking.apply_http_settings(policy.tracking.deadline_seconds, policy.tracking.retries)
    alerts.check(policy)  # else every action would fail while /health looked fine
    worker = Worker(model, policy, seconds)
    try:
        receiver = Receiver((host, port), model, key, worker)
    except OSError as exc:
        raise DriftctlError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose another --port or --host, or stop what listens there",
        ) from None
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # where signals are handled
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
    listener = threading.Thread(target=receiver.serve_forever, name="driftctl-receiver")
    try:
        worker.start()
        if seconds is None:  # approvals made while the service was down
            worker.submit(PROMOTE, "start-up")
        listener.start()
        uri = tracking.shown_uri()
        log(
            f"model {model!r} at {uri}: deliveries to http://{host}:{receiver.server_port}"
            f"{WEBHOOK_PATH}, health at /health"
            + (f"; a cycle every {every}" if seconds else "")
        )
        if not uri.startswith(("http://", "https://")):
            log(f"note: MLflow at {uri} calls no webhooks (only `mlflow server` with a SQL "
                "store does)" + ("; only the scheduled cycles act" if seconds else ""))
        while not stop.wait(0.5):
            pass
        _restore(previous)  # a second signal stops at once, without waiting for the action
        log("stopping: deliveries are answered 503; finishing the action in progress")
    finally:
        _restore(previous)
        # The receiver answers until the action is done: /health stays up, and a delivery
        # gets a 503 that MLflow retries, not a refused connection.
        worker.stop()
        if listener.is_alive():
            receiver.shutdown()
            listener.join()
        receiver.server_close()
    log("stopped")


def _restore(previous: dict) -> None:
    while previous:
        signal.signal(*previous.popitem())
