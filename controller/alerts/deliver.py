"""Delivery: a signed webhook request (driftctl's JSON or a Slack message) and e-mail.

Each attempt returns ``None`` or why it failed, in words that never hold a secret: a
webhook URL is shown as scheme and host only (a Slack webhook URL is a credential), and
neither the signing secret nor an SMTP password is ever part of a message.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import smtplib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from urllib.parse import urljoin, urlsplit

from controller import signing

SECRET = "DRIFTCTL_ALERT_SECRET"
SMTP_USERNAME, SMTP_PASSWORD = "DRIFTCTL_SMTP_USERNAME", "DRIFTCTL_SMTP_PASSWORD"
PREFIX = "Driftctl"  # the headers X-Driftctl-Signature, -Timestamp, -Delivery-Id
TIMEOUT = 5.0  # seconds; a receiver slower than this is retried by the next cycle
DEADLINE = 15.0  # seconds for a whole attempt, webhook or e-mail: a trickle is cut off
MAX_RESPONSE = 64 * 1024  # bytes read at most: a webhook's answer (unused), a mail session
# The default sender's domain, found once without DNS (socket.getfqdn can wait on it).
HOST = socket.gethostname() or "localhost"


def redact(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no path, query or credentials. Never raises: a
    receiver's Location header is shown this way too."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number, or out of range
        return "an address that is not valid"
    return _printable(f"{parts.scheme}://{parts.hostname}{port}")


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
    subject = " ".join(f"driftctl {payload['severity']}: {payload['summary']}".split())
    msg["Subject"] = subject[:200]  # a line break in the summary would end the header
    msg["From"] = sender or f"driftctl@{HOST}"
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
    where = f"webhook {redact(url)}"
    deadline = SocketDeadline(DEADLINE)
    opener = urllib.request.build_opener(_HTTP(deadline), _HTTPS(deadline), _NoRedirect)
    try:
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        with opener.open(request, timeout=TIMEOUT) as response:
            response.read(MAX_RESPONSE)
        if deadline.expired:  # the answer was cut short
            return f"{where}: {deadline.reason}"
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            return f"{where}: HTTP {exc.code} {_redirect(url, exc.headers.get('Location'))}"
        return f"{where}: HTTP {exc.code}"
    except (ValueError, http.client.InvalidURL):
        # Their messages quote the URL, whose path may be the token.
        return f"{where}: the URL is not valid (not shown)"
    except Exception as exc:  # anything else is a failed attempt, recorded
        if deadline.expired:
            return f"{where}: {deadline.reason}"
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return f"{where}: {_reason(reason)}"
    finally:
        deadline.cancel()
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: a POST followed becomes a GET without the body (urllib's
    default), which the receiver may well answer 200 to, and nothing was delivered."""

    def http_error_302(self, req, fp, code, msg, headers):
        return None  # urllib's default handler then raises the 3xx as an HTTPError

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _redirect(url: str, location: str | None) -> str:
    """Why a redirect failed, naming where it led (scheme and host only)."""
    if not location:
        return "redirect without a Location: configure the final URL"
    try:
        target = redact(urljoin(url, location))
    except ValueError:
        target = "an address that is not valid"
    return f"redirect to {target}, not followed: configure the final URL"


class SocketDeadline:
    """Cuts the connections it watches once ``seconds`` have passed: ``TIMEOUT`` bounds
    each read, this bounds the whole attempt."""

    def __init__(self, seconds: float):
        self.expired = False
        self.reason = f"no complete answer within {seconds:g} s"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Watch the TCP socket ``sock`` from now on. A duplicate is kept: wrapping
        ``sock`` in TLS detaches it, and shutting the duplicate down cuts the connection
        all the same, in the handshake or after it."""
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(self._sockets[-1])

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _cut(self) -> None:
        # Under the lock: a socket closed meanwhile could lend its number to another.
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once


def _watched(base: type[http.client.HTTPConnection], deadline: SocketDeadline):
    class Watched(http.client.HTTPConnection):
        def connect(self):
            super().connect()  # the TCP connection, before HTTPS wraps it
            deadline.watch(self.sock)

    if base is http.client.HTTPConnection:
        return Watched
    return type("Watched", (base, Watched), {})  # HTTPS's connect calls Watched's first


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: SocketDeadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(_watched(http.client.HTTPConnection, self._deadline), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: SocketDeadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        return self.do_open(_watched(http.client.HTTPSConnection, self._deadline), req,
                            context=self._context)


def _smtp(secure: bool, deadline: SocketDeadline) -> type[smtplib.SMTP]:
    """smtplib's client, its connection watched by ``deadline`` from before the greeting
    and any TLS handshake, and reading at most ``MAX_RESPONSE`` bytes."""

    class Watched(smtplib.SMTP):
        def _get_socket(self, host, port, timeout):
            # smtplib's hook for the TCP connection; SMTP_SSL wraps what it returns.
            sock = super()._get_socket(host, port, timeout)
            deadline.watch(sock)
            return sock

        def getreply(self):
            # smtplib keeps every line of a reply, however many the server sends.
            if self.file is None and self.sock is not None:
                self.file = _Capped(self.sock.makefile("rb"))
            return super().getreply()

    if secure:
        return type("Secure", (smtplib.SMTP_SSL, Watched), {})  # SMTP_SSL, then Watched
    return Watched


class _Capped:
    """A mail server's replies, cut off after ``MAX_RESPONSE`` bytes; smtplib turns the
    OSError into SMTPServerDisconnected and closes the connection."""

    def __init__(self, file):
        self._file, self._left = file, MAX_RESPONSE

    def readline(self, size: int = -1) -> bytes:
        line = self._file.readline(size)
        self._left -= len(line)
        if self._left < 0:
            raise OSError(f"a reply of more than {MAX_RESPONSE // 1024} KiB")
        return line

    def close(self) -> None:
        self._file.close()


def send(server: str, msg: EmailMessage) -> str | None:
    """Send ``msg`` through ``server`` (smtp:// or smtps://); None when the server accepted
    it, else why not. STARTTLS is used whenever an smtp:// server offers it, and is required
    to log in: a password never travels in clear text."""
    parts = urlsplit(server)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    user, password = os.environ.get(SMTP_USERNAME), os.environ.get(SMTP_PASSWORD)
    where = f"smtp {redact(server)}"
    deadline = SocketDeadline(DEADLINE)
    tls = {"context": ssl.create_default_context()} if secure else {}
    try:
        conn = _smtp(secure, deadline)(parts.hostname, port, timeout=TIMEOUT, **tls)
        try:
            conn.ehlo()
            if not secure and conn.has_extn("starttls"):
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            elif not secure and user:
                return (f"{where}: the server offers no STARTTLS, and {SMTP_USERNAME} is set: "
                        "the password is not sent in clear text (use smtps:// or a server "
                        "with STARTTLS)")
            if user:
                conn.login(user, password or "")
            conn.send_message(msg)
            # Accepted: whatever QUIT runs into, the message was delivered.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.quit()
        finally:
            conn.close()
    except smtplib.SMTPResponseException as exc:
        return f"{where}: {exc.smtp_code} {_reason(exc.smtp_error)}"
    except (smtplib.SMTPException, OSError) as exc:
        return f"{where}: {deadline.reason if deadline.expired else _reason(exc)}"
    finally:
        deadline.cancel()
    return None


def _reason(reason) -> str:
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {TIMEOUT:g} s"
    return _printable((str(reason) or type(reason).__name__)[:300])


def _printable(text: str) -> str:
    """``text`` without control characters: a server's words reach terminals and tags."""
    return "".join(c if c.isprintable() else "?" for c in text)
