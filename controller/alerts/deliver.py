"""Delivery: a signed webhook request (driftctl's JSON or a Slack message) and e-mail.

Each attempt returns ``None`` or why it failed, in words that never hold a secret: a
webhook URL is shown as scheme and host only (a Slack webhook URL is a credential), and
neither the signing secret nor an SMTP password is ever part of a message.
"""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from urllib.parse import urlsplit

from controller import signing

SECRET = "DRIFTCTL_ALERT_SECRET"
SMTP_USERNAME, SMTP_PASSWORD = "DRIFTCTL_SMTP_USERNAME", "DRIFTCTL_SMTP_PASSWORD"
PREFIX = "Driftctl"  # the headers X-Driftctl-Signature, -Timestamp, -Delivery-Id
TIMEOUT = 5.0  # seconds; a receiver slower than this is retried by the next cycle


def redact(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no path, query or credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def body(payload: dict, format: str) -> bytes:
    """The request body: driftctl's payload as JSON, or a Slack incoming-webhook message."""
    if format == "slack":
        return json.dumps(slack(payload), sort_keys=True).encode()
    return json.dumps(payload, sort_keys=True).encode()


def slack(payload: dict) -> dict:
    """A Slack message: ``text`` (the notification and fallback) and blocks that add the
    evidence and the links."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(
        payload["severity"], ":information_source:"
    )
    text = f"{icon} [driftctl] {payload['summary']}"
    lines = [f"*{payload['summary']}*"]
    if payload["triage"]:
        lines.append(f"triage: `{payload['triage']}`, severity: {payload['severity']}")
    lines += [f"• {e}" for e in payload["evidence"]]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}]
    if payload["links"]:
        links = " | ".join(f"<{url}|{name}>" for name, url in payload["links"].items())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    return {"text": text, "blocks": blocks}


def email(payload: dict, sender: str, to: tuple[str, ...]) -> EmailMessage:
    # Python folds a long subject oddly (a line break before it): lines may reach RFC
    # 5322's hard limit instead, and the subject is cut well below it.
    msg = EmailMessage(policy=SMTP.clone(max_line_length=998))
    msg["Subject"] = f"driftctl {payload['severity']}: {payload['summary']}"[:200]
    msg["From"] = sender or f"driftctl@{socket.getfqdn()}"
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    # The same Message-ID on every attempt lets a mail system drop a duplicate.
    msg["Message-ID"] = f"<{payload['delivery_id']}@driftctl>"
    msg["X-Driftctl-Delivery-Id"] = payload["delivery_id"]
    lines = [payload["summary"], ""]
    for key in ("event", "status", "severity", "model", "version", "triage", "run_id"):
        if payload[key] not in (None, ""):
            lines.append(f"{key}: {payload[key]}")
    if payload["evidence"]:
        lines += ["", "evidence:", *(f"- {e}" for e in payload["evidence"])]
    if payload["links"]:
        lines += ["", *(f"{name}: {url}" for name, url in payload["links"].items())]
    lines += ["", f"delivery id: {payload['delivery_id']}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def post(url: str, data: bytes, delivery_id: str, secret: str) -> str | None:
    """POST a signed ``data`` to the webhook; None when delivered (2xx), else why not."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "driftctl",
        **signing.headers(PREFIX, secret, delivery_id, data),
    }
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    where = f"webhook {redact(url)}"
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"{where}: HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return f"{where}: {_reason(exc.reason)}"
    except (OSError, http.client.HTTPException) as exc:
        return f"{where}: {_reason(exc)}"
    return None


def send(server: str, msg: EmailMessage) -> str | None:
    """Send ``msg`` through ``server`` (smtp:// or smtps://); None when the server accepted
    it, else why not. STARTTLS is used whenever an smtp:// server offers it."""
    parts = urlsplit(server)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    user, password = os.environ.get(SMTP_USERNAME), os.environ.get(SMTP_PASSWORD)
    where = f"smtp {redact(server)}"
    try:
        if secure:
            conn = smtplib.SMTP_SSL(parts.hostname, port, timeout=TIMEOUT,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT)
        with conn:
            conn.ehlo()
            if not secure and conn.has_extn("starttls"):
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if user:
                conn.login(user, password or "")
            conn.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        return f"{where}: {exc.smtp_code} {_reason(exc.smtp_error)}"
    except (smtplib.SMTPException, OSError) as exc:
        return f"{where}: {_reason(exc)}"
    return None


def _reason(reason) -> str:
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {TIMEOUT:g} s"
    return (str(reason) or type(reason).__name__)[:300]
