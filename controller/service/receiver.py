"""The HTTP side of ``driftctl serve``: MLflow's registry webhooks in, hints to the worker.

    POST /mlflow-webhook   a delivery: its body (at most 1 MiB, as Content-Length says) is
                           read, then its signature, freshness and delivery id are checked
                           before it is parsed; an event about the model's versions queues
                           a promote (202), any other is ignored (200)
    GET  /health           the worker's state, as JSON: 503 once an action has overrun
                           the policy's deadline (``error`` says which)

At most ``MAX_HANDLERS`` requests are handled at once, and ``PROBE_HANDLERS`` more that
answer only ``GET /health``, so that clients holding every handler do not fail the liveness
probe; a connection beyond them is answered 503 at once, without a thread. A request's line
and headers take at most ``MAX_HEAD`` bytes (else 431), and its connection is cut once
``REQUEST_DEADLINE`` seconds have passed (``PROBE_DEADLINE`` on a probe's handler): a client
that trickles its request holds a handler no longer.

A delivery is only a hint: the promote it queues reads the registry again, so a forged or
stale event (or one about a version nobody approved) moves nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from controller import signing
from controller.alerts.deliver import SocketDeadline  # the cut-off outgoing alerts use too
from controller.loop.registry import APPROVAL
from controller.service.worker import PROMOTE, Worker, log

WEBHOOK_PATH = "/mlflow-webhook"
MAX_AGE = 300  # seconds a delivery's timestamp may be off; its id is remembered as long
MAX_BODY = 1 << 20  # MLflow's payloads are a few hundred bytes
MAX_HANDLERS = 16  # MLflow sends from a small thread pool
PROBE_HANDLERS = 2  # kept for GET /health: probes come one at a time
MAX_HEAD = 16 * 1024  # bytes of request line and headers; MLflow sends about 500
REQUEST_DEADLINE = 10.0  # seconds for a whole request and its answer
PROBE_DEADLINE = 2.0  # on a probe's handler: a probe asks as soon as it connects
PREFIX = "MLflow"  # X-MLflow-Signature, X-MLflow-Timestamp, X-MLflow-Delivery-Id
_BUSY_BODY = b'{"error": "too many requests at once; retry later"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s") % (len(_BUSY_BODY), _BUSY_BODY)


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

    def forget(self, delivery_id: str) -> None:
        """Let ``delivery_id`` in again: it was admitted, then not accepted (and MLflow
        retries it with the same id and timestamp)."""
        with self._lock:
            self._expires.pop(delivery_id, None)


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
        self._slots = [(threading.BoundedSemaphore(MAX_HANDLERS), _Handler),
                       (threading.BoundedSemaphore(PROBE_HANDLERS), _ProbeHandler)]
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        taken = next(((slots, handler) for slots, handler in self._slots
                      if slots.acquire(blocking=False)), None)
        if taken is None:
            with contextlib.suppress(OSError):
                request.settimeout(0.1)
                request.sendall(_BUSY)
                request.shutdown(socket.SHUT_WR)
                request.recv(65536)  # the request: closing with it unread would reset the reply
            self.shutdown_request(request)
            return
        threading.Thread(target=self._handle, args=(request, client_address, *taken),
                         daemon=True).start()

    def _handle(self, request, client_address, slots, handler) -> None:
        """ThreadingMixIn's ``process_request_thread``, with the handler of the slot taken."""
        try:
            handler(request, client_address, self)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            slots.release()

    def receive(self, path: str, headers, body: bytes) -> tuple[int, dict, str | None]:
        """The status and JSON reply for a POST of ``body`` to ``path``, and the delivery
        id once verified (None before: an unverified header is not worth a log line)."""
        if path != WEBHOOK_PATH:
            return 404, {"error": f"deliveries go to {WEBHOOK_PATH}"}, None
        # One plain mapping for both the check and the replay window: a header sent twice
        # cannot be verified in one value and remembered in the other.
        fields = {k.lower(): v for k, v in headers.items()}
        try:
            delivery = signing.verify_headers(PREFIX, self._secret, fields, body,
                                              max_age=MAX_AGE)
        except signing.BadSignature as exc:
            return 401, {"error": exc.reason}, None
        seen = self.deliveries.admit(delivery, fields[f"x-{PREFIX.lower()}-timestamp"])
        if seen == "replay":
            return 409, {"error": "the delivery was received before"}, delivery
        if seen == "full":
            return 503, {"error": "too many deliveries at once; retry later"}, delivery
        try:
            event = json.loads(body)
        except ValueError:
            return 400, {"error": "the body is not JSON"}, delivery
        why = hint(event, self.model) if isinstance(event, dict) else None
        if why is None:
            return 200, {"status": "ignored", "detail": f"not an approval or a new version "
                                                        f"of {self.model!r}"}, delivery
        queued = self.worker.submit(PROMOTE, why)
        if queued == "stopping":  # MLflow retries a 503: the next service acts on it
            # Admitted first, so that two copies at once cannot both pass as new.
            self.deliveries.forget(delivery)
            return 503, {"error": "the service is stopping; retry later"}, delivery
        return 202, {"status": queued, "detail": why}, delivery


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    timeout = 10  # seconds a read may wait; ``deadline`` bounds the whole request
    deadline = REQUEST_DEADLINE

    def setup(self):
        self._deadline = SocketDeadline(self.deadline)
        self._deadline.watch(self.request)
        super().setup()
        self.rfile = _HeadLimit(self.rfile, MAX_HEAD)

    def handle(self):
        try:
            super().handle()
        except OSError as exc:  # the client went away, or was cut off: nobody to answer
            log(_printable(f"{self.address_string()}: " + (
                f"cut off: no complete request within {self.deadline:g} s"
                if self._deadline.expired else f"connection lost: {exc}")))

    def finish(self):
        try:
            super().finish()
        finally:
            self._deadline.cancel()

    def do_GET(self):
        if self.path == "/health":
            health = self.server.worker.health()
            self._reply(503 if "error" in health else 200, health)
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

    def _reply(self, status: int, reply: dict, delivery: str | None = None) -> None:
        body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path != "/health":  # a probe every few seconds would drown the journal
            said = ": ".join(str(reply[k]) for k in ("status", "error", "detail") if k in reply)
            log(_printable(f"{self.command} {self.path} {status} {said}"
                           + (f" (delivery {delivery})" if delivery else "")))

    def log_request(self, code="-", size="-"):
        """Replies are logged by ``_reply``, with what was done."""

    def log_message(self, format, *args):
        log(_printable(f"{self.address_string()}: {format % args}"))


class _ProbeHandler(_Handler):
    """On a handler kept for probes: ``GET /health``; a delivery is answered 503, as beyond
    the handlers."""

    deadline = PROBE_DEADLINE

    def do_POST(self):
        self._reply(503, json.loads(_BUSY_BODY))


class _HeadLimit:
    """A request's stream whose request line and headers take at most ``limit`` bytes in
    all; beyond, http.server answers 431. The body is read as it is."""

    def __init__(self, stream, limit: int):
        self._stream, self._left = stream, limit

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise http.client.LineTooLong(f"request line and headers beyond {MAX_HEAD} bytes")
        line = self._stream.readline(self._left if size < 0 else min(size, self._left))
        self._left -= len(line)
        return line

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _printable(line: str) -> str:
    """``line`` with control characters escaped: what a client sends cannot forge a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
