"""Webhook signatures, as MLflow signs its registry webhooks.

A request carries three headers, ``X-<Prefix>-Signature: v1,<base64 HMAC-SHA256>``,
``X-<Prefix>-Timestamp`` (unix seconds) and ``X-<Prefix>-Delivery-Id``; the MAC covers
``f"{delivery_id}.{timestamp}.{body}"``. driftctl's alerts use the prefix ``Driftctl``,
MLflow uses ``MLflow``: both sides share ``sign`` and ``verify``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

__all__ = ["BadSignature", "headers", "sign", "verify", "verify_headers"]

VERSION = "v1"
# Characters of a signature or delivery id at most: they are 47 and a UUID's 36. A header
# holds whatever its sender put there; nothing longer is looked at.
MAX_VALUE = 256
_TIMESTAMP = re.compile("[0-9]{1,12}")  # unix seconds up to the year 33658


class BadSignature(Exception):
    """A request whose signature is wrong or malformed, or whose timestamp is stale or in the
    future. ``reason`` says which."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes | str) -> str:
    """``"v1,<base64 HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")>"``."""
    raw = body.encode() if isinstance(body, str) else body
    message = f"{delivery_id}.{timestamp}.".encode() + raw
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


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
    """Raise BadSignature unless ``signature`` signs this request and ``timestamp`` is within
    ``max_age`` seconds of ``now`` (default: the clock), either way: a replayed old request
    and one dated ahead are both refused."""
    # Checked before int(), which refuses over 4,300 digits with a ValueError; digits only,
    # as float() would take "nan", which no freshness window refuses.
    if not (isinstance(timestamp, str) and _TIMESTAMP.fullmatch(timestamp)):
        raise BadSignature(f"timestamp {_shown(timestamp)} is not unix seconds (1 to 12 digits)")
    # Printable ASCII: a lone surrogate, say, could not even be encoded to compare.
    for what, value in (("signature", signature), ("delivery id", delivery_id)):
        if not (isinstance(value, str) and len(value) <= MAX_VALUE and value.isascii()
                and value.isprintable()):
            raise BadSignature(f"{what} is not printable ASCII of at most {MAX_VALUE} characters")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > max_age:
        side = "old" if age > 0 else "in the future"
        raise BadSignature(f"timestamp is {abs(age):.0f} s {side} (at most {max_age:g} s)")
    if not signature.startswith(f"{VERSION},"):
        raise BadSignature(f"signature is not of the form '{VERSION},<base64>'")
    expected = sign(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BadSignature("signature does not match the body")


def _shown(value) -> str:
    """``value`` as a reason may quote it: short, since the reason goes back to the sender."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def headers(prefix: str, secret: str, delivery_id: str, body: bytes | str,
            timestamp: str | None = None) -> dict[str, str]:
    """The three signing headers of a request, ``X-<prefix>-*``."""
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    return {
        f"X-{prefix}-Signature": sign(secret, delivery_id, timestamp, body),
        f"X-{prefix}-Timestamp": timestamp,
        f"X-{prefix}-Delivery-Id": delivery_id,
    }


def verify_headers(
    prefix: str,
    secret: str,
    request_headers: Mapping[str, str],
    body: bytes | str,
    *,
    max_age: float = 300,
    now: float | None = None,
) -> str:
    """``verify`` a request from its ``X-<prefix>-*`` headers (matched without regard to
    case, as HTTP does); returns its delivery id, for deduplication."""
    lower = {k.lower(): v for k, v in request_headers.items()}
    values = []
    for part in ("signature", "delivery-id", "timestamp"):
        key = f"x-{prefix.lower()}-{part}"
        if key not in lower:
            raise BadSignature(f"header X-{prefix}-{part.title()} is missing")
        values.append(lower[key])
    signature, delivery_id, timestamp = values
    verify(secret, signature, delivery_id, timestamp, body, max_age=max_age, now=now)
    return delivery_id
