"""The HTTP side of ``driftctl serve``: MLflow's registry webhooks in, hints to the worker.

    POST /mlflow-webhook   a delivery; its signature, freshness and delivery id are checked
                           before its body is read; an event about the model's versions
                           queues a promote (202), any other is ignored (200)
    GET  /health           the worker's state, as JSON

A delivery is only a hint: the promote it queues reads the registry again, so a forged or
stale event (or one about a version nobody approved) moves nothing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from controller import signing
from controller.loop.registry import APPROVAL
from controller.service.worker import PROMOTE, Worker, log

WEBHOOK_PATH = "/mlflow-webhook"
MAX_AGE = 300  # seconds a delivery's timestamp may be off; its id is remembered as long
MAX_BODY = 1 << 20  # MLflow's payloads are a few hundred bytes
SIGNATURE = "X-MLflow-Signature"
TIMESTAMP = "X-MLflow-Timestamp"
DELIVERY = "X-MLflow-Delivery-Id"


class Deliveries:
    """The delivery ids seen while their timestamps are fresh: a replay is refused.

    An id is forgotten once its timestamp has aged past ``max_age``, when the freshness
    check refuses it anyway. At ``limit`` ids, new deliveries are refused with a retryable
    status rather than forgetting ids early.
    """

    def __init__(self, max_age: float = MAX_AGE, limit: int = 100_000):
        self.max_age = max_age
        self.limit = limit
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, delivery_id: str, timestamp: str, now: float | None = None) -> str:
        """``new`` the first time, ``replay`` after, ``full`` when no id can be kept."""
        now = time.time() if now is None else now
        with self._lock:
            if delivery_id in self._expires:
                return "replay"
            if len(self._expires) >= self.limit:
                self._expires = {k: t for k, t in self._expires.items() if t >= now}
                if len(self._expires) >= self.limit:
                    return "full"
            self._expires[delivery_id] = max(float(timestamp), now) + self.max_age
            return "new"


def hint(event: dict, model: str) -> str | None:
    """Why ``event`` calls for reading ``model``'s registry again; None when it does not.

    A person's ``approval`` tag, and a new version (a challenger registered elsewhere).
    driftctl's own tags (``driftctl.*``) are ignored, so its writes do not echo back.
    """
    data = event.get("data")
    if not isinstance(data, dict) or data.get("name") != model:
        return None
    kind = f"{event.get('entity')}.{event.get('action')}"
    if kind == "model_version_tag.set" and data.get("key") == APPROVAL:
        return f"{kind}: version {data.get('version')} {APPROVAL}={data.get('value')!r}"
    if kind == "model_version.created":
        return f"{kind}: version {data.get('version')}"
    return None


class Receiver(ThreadingHTTPServer):
    """Verifies MLflow's deliveries for ``model`` and hands the worker what they hint at."""

    def __init__(self, address: tuple[str, int], model: str, secret: str, worker: Worker):
        self.model = model
        self.worker = worker
        self.deliveries = Deliveries()
        self._secret = secret
        super().__init__(address, _Handler)

    def receive(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        """The status and JSON reply for a POST of ``body`` to ``path``."""
        if path != WEBHOOK_PATH:
            return 404, {"error": f"deliveries go to {WEBHOOK_PATH}"}
        signature, timestamp, delivery = (headers.get(h) for h in (SIGNATURE, TIMESTAMP, DELIVERY))
        if not (signature and timestamp and delivery):
            return 401, {"error": f"missing {SIGNATURE}, {TIMESTAMP} or {DELIVERY}"}
        try:
            signing.verify(self._secret, signature, delivery, timestamp, body, max_age=MAX_AGE)
        except signing.BadSignature as exc:
            return 401, {"error": exc.reason}
        seen = self.deliveries.admit(delivery, timestamp)
        if seen == "replay":
            return 409, {"error": f"delivery {delivery} was received before"}
        if seen == "full":
            return 503, {"error": "too many deliveries at once; retry later"}
        try:
            event = json.loads(body)
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        why = hint(event, self.model) if isinstance(event, dict) else None
        if why is None:
            return 200, {"status": "ignored", "detail": f"not an approval or a new version "
                                                        f"of {self.model!r}"}
        queued = self.worker.submit(PROMOTE, why)
        return 202, {"status": "queued" if queued else "already queued", "detail": why}


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    timeout = 10  # a client that stalls mid-request does not hold a thread for long

    def do_GET(self):
        if self.path == "/health":
            self._reply(200, self.server.worker.health())
        else:
            self._reply(404, {"error": f"GET /health, or POST {WEBHOOK_PATH}"})

    def do_POST(self):
        try:
            size = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._reply(411, {"error": "Content-Length required"})
        if not 0 <= size <= MAX_BODY:
            return self._reply(413, {"error": f"a delivery is at most {MAX_BODY} bytes"})
        self._reply(*self.server.receive(self.path, self.headers, self.rfile.read(size)))

    def _reply(self, status: int, reply: dict) -> None:
        body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path != "/health":  # a probe every few seconds would drown the journal
            said = ": ".join(str(reply[k]) for k in ("status", "error", "detail") if k in reply)
            delivery = self.headers.get(DELIVERY)
            log(f"{self.command} {self.path} {status} {said}"
                + (f" (delivery {delivery})" if delivery else ""))

    def log_request(self, code="-", size="-"):
        """Replies are logged by ``_reply``, with what was done."""

    def log_message(self, format, *args):
        log(f"{self.address_string()}: {format % args}")
