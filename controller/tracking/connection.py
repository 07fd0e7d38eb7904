"""The MLflow client driftctl talks through, which store it points at, and what an error
MLflow reports becomes."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from controller._errors import TrackingError

_held: dict[tuple[str, str], MlflowClient] = {}  # (tracking URI, registry URI) -> client
_injected: list[MlflowClient] = []


def client() -> MlflowClient:
    """The client every read and write goes through.

    One per tracking and registry URI, built on first use: a notebook or a test suite that
    points MLflow at another store gets that store's client, as ``MlflowClient()`` would.
    A client given to ``use_client`` takes precedence while it is in use.
    """
    if _injected:
        return _injected[-1]
    key = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    held = _held.get(key)
    if held is None:
        held = _held[key] = MlflowClient(*key)
    return held


@contextlib.contextmanager
def use_client(injected: MlflowClient) -> Iterator[MlflowClient]:
    """Route the seam's client calls through ``injected`` (another store, a client with
    its own settings) inside the block.

    Runs driftctl starts itself (``atomic_run`` without a run id, ``start_run``) and the
    models it loads follow MLflow's current tracking URI, as MLflow's own fluent API does.
    """
    _injected.append(injected)
    try:
        yield injected
    finally:
        _injected.pop()


def tracking_uri() -> str:
    """The store driftctl talks to: the injected client's, else MLflow's current one."""
    return _injected[-1].tracking_uri if _injected else mlflow.get_tracking_uri()


def set_tracking_uri(uri: str) -> None:
    mlflow.set_tracking_uri(uri)


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact(text: str, uri: str | None = None) -> str:
    """``text`` without the user-info of any URL in it (``http://alice:pw@host`` reads
    ``http://***@host``), nor ``uri``'s password anywhere else: what may go to a log, an
    error message or ``/health``."""
    secrets = set()
    if uri:
        with contextlib.suppress(ValueError):
            password = urlsplit(uri).password
            if password:
                secrets |= {password, unquote(password)}
    text = _USERINFO.sub("***@", text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def shown_uri() -> str:
    """The tracking URI as it may be shown: without its user name or password."""
    return redact(tracking_uri())


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Report an error MLflow raises as a ``TrackingError``: what MLflow said, and where,
    never a password the tracking URI holds."""
    try:
        yield
    except MlflowException as exc:
        uri = tracking_uri()
        raise TrackingError(
            f"MLflow ({redact(uri, uri)}) reported: {redact(exc.message, uri)}",
            "act on MLflow's message above; if MLflow is unreachable, check --tracking-uri / "
            "MLFLOW_TRACKING_URI and that the server is up",
        ) from exc
