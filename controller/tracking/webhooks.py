"""MLflow's model-registry webhooks: which exist, creating one, updating one.

MLflow calls a webhook only from inside a tracking server with a SQL store; a client that
writes to a store directly (``sqlite:///mlflow.db``) changes the registry silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from controller._errors import DriftctlError
from controller.tracking.connection import client, shown_uri, tracking_uri


@dataclass(frozen=True)
class Webhook:
    """A webhook as MLflow returns it (never with its secret)."""

    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    active: bool


def require_webhook_server() -> None:
    """Refuse a tracking URI through which no webhook would ever fire."""
    if urlparse(tracking_uri()).scheme not in ("http", "https"):
        raise DriftctlError(
            f"MLflow at {shown_uri()} calls no webhooks: they fire only inside a tracking server "
            "(`mlflow server`) with a SQL store, not from a client writing to the store",
            "start `mlflow server --backend-store-uri sqlite:///mlflow.db` (or another SQL "
            "database) and point --tracking-uri / MLFLOW_TRACKING_URI at it "
            "(http://HOST:PORT)",
        )


def webhooks_named(name: str) -> list[Webhook]:
    """The registry's webhooks called ``name``, oldest first."""
    found, token = [], None
    while True:
        page = client().list_webhooks(max_results=100, page_token=token)
        found += [_plain(w) for w in page if w.name == name]
        token = page.token
        if not token:
            return found


def create_webhook(name: str, url: str, events: list[str], secret: str) -> Webhook:
    return _plain(client().create_webhook(name=name, url=url, events=events, secret=secret))


def update_webhook(webhook_id: str, url: str, events: list[str], secret: str) -> Webhook:
    """Point the webhook at ``url`` for ``events``, active, signing with ``secret``."""
    return _plain(
        client().update_webhook(
            webhook_id, url=url, events=events, secret=secret, status="ACTIVE"
        )
    )


def _plain(webhook) -> Webhook:
    return Webhook(
        webhook.webhook_id,
        webhook.name,
        webhook.url,
        tuple(str(e) for e in webhook.events),
        webhook.status.is_active(),
    )
