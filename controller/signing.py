"""HMAC signatures of webhook deliveries, as MLflow signs them:
``v1,<base64 HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class BadSignature(ValueError):
    """A delivery whose signature or timestamp cannot be trusted; ``reason`` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes | str) -> str:
    """The signature header's value for a delivery."""
    raw = body.encode() if isinstance(body, str) else body
    content = f"{delivery_id}.{timestamp}.".encode() + raw
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    signature: str,
    delivery_id: str,
    timestamp: str,
    body: bytes | str,
    *,
    max_age: float = 300,
    now: float | None = None,
) -> None:
    """Raise ``BadSignature`` unless ``signature`` signs the delivery and ``timestamp`` (unix
    seconds) is within ``max_age`` seconds of ``now``, either way."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except (TypeError, ValueError):
        raise BadSignature(f"timestamp {timestamp!r} is not unix seconds") from None
    if abs(age) > max_age:
        when = "old" if age > 0 else "ahead"
        raise BadSignature(f"timestamp is {abs(age):.0f} s {when} (limit {max_age:.0f} s)")
    expected = sign(secret, delivery_id, timestamp, body).encode()
    if not hmac.compare_digest(expected, (signature or "").encode()):
        raise BadSignature("signature does not match")
