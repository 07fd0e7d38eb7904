"""``driftctl webhook install``: the registry webhook that calls ``driftctl serve``,
created once and kept pointing at the service."""

from __future__ import annotations

from urllib.parse import urlparse

from controller import tracking
from controller._errors import DriftctlError
from controller.service.run import SECRET_ENV, secret

EVENTS = ["model_version_tag.set", "model_version.created"]


def webhook_name(model: str) -> str:
    return f"driftctl-{model}"


def install(model: str, url: str, *, update_secret: bool = False) -> str:
    """Create the webhook ``driftctl-<model>``, or point it at ``url``; returns what was
    done, in words. Rerunning with the same ``url`` changes nothing."""
    key = secret()
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise DriftctlError(
            f"--url {url!r} is not an http(s) URL",
            "pass where driftctl serve listens, e.g. http://driftctl.internal:8787/mlflow-webhook",
        )
    tracking.require_webhook_server()
    name = webhook_name(model)
    events = ", ".join(EVENTS)
    found = tracking.webhooks_named(name)
    if not found:
        hook = tracking.create_webhook(name, url, EVENTS, key)
        return f"created webhook {name} ({hook.webhook_id}): MLflow sends {events} to {url}"
    hook = found[0]
    if hook.url == url and set(hook.events) == set(EVENTS) and hook.active and not update_secret:
        return (
            f"webhook {name} ({hook.webhook_id}) already sends {events} to {url}: nothing "
            f"changed (MLflow never returns a secret; after changing {SECRET_ENV}, rerun "
            "with --update-secret)"
        )
    tracking.update_webhook(hook.webhook_id, url, EVENTS, key)
    return (
        f"updated webhook {name} ({hook.webhook_id}): MLflow sends {events} to {url} "
        f"(was {hook.url}{'' if hook.active else ', disabled'}), signed with {SECRET_ENV}"
    )
