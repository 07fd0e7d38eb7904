"""``driftctl serve``: approvals that act at once.

MLflow's registry webhooks tell the service that a person set a version's ``approval`` tag,
or that a version was created; the service then reads the registry again and acts through
``driftctl promote``'s code. A webhook is only a hint: deliveries can be lost (MLflow keeps
no outbox), so ``cycle`` and ``promote`` stay correct on their own.

    worker    one action at a time: promotes that deliveries hint at, scheduled cycles
    receiver  the HTTP server: signatures, freshness and replays checked; /health
    run       ``serve``: the secret, the interval, start-up and a clean stop on a signal
    install   ``driftctl webhook install``: the registry webhook, created or updated once
"""

from __future__ import annotations

from controller.service.install import EVENTS, install, webhook_name
from controller.service.receiver import WEBHOOK_PATH
from controller.service.run import SECRET_ENV, parse_every, serve

__all__ = ["EVENTS", "SECRET_ENV", "WEBHOOK_PATH", "install", "parse_every", "serve",
           "webhook_name"]
