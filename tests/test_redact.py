"""No password or secret in what driftctl shows: URLs with any password, the secrets it
is given in the environment, MLflow's HTTP errors and an internal error's trace; and a
permission check that answers with one error when the server is not what it should be."""

from __future__ import annotations

import contextlib
import http.client
import io
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
from conftest import make_frame, register
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from controller import cli, tracking
from controller._errors import TrackingError
from controller.tracking.connection import redact

SECRETS = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "DRIFTCTL_ALERT_SECRET",
           "DRIFTCTL_WEBHOOK_SECRET", "DRIFTCTL_SMTP_PASSWORD")


@pytest.fixture(autouse=True)
def no_secrets_set(monkeypatch):
    """The properties hold without the environment's help, unless a test sets a secret."""
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)


def _said(uri: str) -> str:
    return f"413 Client Error: Request Entity Too Large for url: {uri}/api/2.0/x?a=1. More"


@pytest.mark.parametrize("password", ["pa/ss", "p@ss", "a@b/c@d", "p:ss", "p%40ss"])
def test_a_password_with_a_slash_or_at_sign_is_removed_from_urls(password):
    uri = f"http://alice:{password}@127.0.0.1:9"
    shown = redact(_said(uri))
    assert shown == _said("http://***@127.0.0.1:9")


def test_only_the_user_info_goes_and_each_url_is_redacted_on_its_own():
    text = ("tried 'http://alice:pw@a:1/p' and http://b/x then https://bob:s@c/y@z "
            "models:/credit@champion")
    assert redact(text) == ("tried 'http://***@a:1/p' and http://b/x then https://***@z "
                            "models:/credit@champion")


# What may stand around a URL in a message, and what ends a URL in one.
_AROUND = st.text(string.ascii_letters + string.digits + " .:,;()[]'\"", max_size=20)
_ENDS_URL = string.whitespace + "'\""


@settings(max_examples=300, deadline=None)
@given(password=st.text(string.printable, min_size=4, max_size=24), before=_AROUND,
       after=_AROUND)
def test_no_printable_password_survives_redaction(password, before, after):
    uri = f"https://alice:{password}@mlflow.example.com:5000"
    assume(password not in f"{before}{_said('https://***@mlflow.example.com:5000')}{after}")
    text = f"{before}{_said(uri)}{after}"
    assert password not in redact(text, uri)
    if not set(password) & set(_ENDS_URL):  # then the URL alone is enough to find it
        assert password not in redact(text)


def test_secrets_from_the_environment_are_redacted_anywhere(monkeypatch):
    for i, name in enumerate(SECRETS):
        monkeypatch.setenv(name, f"s3cr/et-{i}")
    text = " ".join(f"{name}=s3cr/et-{i} ({quote(f's3cr/et-{i}', safe='')})"
                    for i, name in enumerate(SECRETS))
    shown = redact(text)
    assert "s3cr" not in shown
    assert shown.count("***") == 2 * len(SECRETS)


# What nginx answers a body over its client_max_body_size (1 MiB by default).
TOO_LARGE = (413, "<html><head><title>413 Request Entity Too Large</title></head><body><center>"
             "<h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body>"
             "</html>")
# What a single sign-on proxy answers a client that has not signed in its way.
SIGN_IN = (200, "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form "
                "method='post' action='/oauth2/start'><button>Sign in with SSO</button></form>"
                "</body></html>")
PASSWORD = "hunter2/@x"  # ends neither the user-info nor the password where a naive parse would
ENCODED = quote(PASSWORD, safe="")  # as it stands in a URL


class Server(ThreadingHTTPServer):
    """A small HTTP server on 127.0.0.1: ``answer(method, path)`` gives (status, HTML page),
    or None to pass the request on to ``upstream`` (a reverse proxy, as nginx is)."""

    daemon_threads = True

    def __init__(self, answer, upstream: str | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer, self.upstream = answer, upstream and urlsplit(upstream).netloc

    @classmethod
    @contextlib.contextmanager
    def running(cls, answer, upstream: str | None = None):
        """The server's address (host:port) while the block runs."""
        server = cls(answer, upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = self.server.answer(self.command, self.path)
        if answer is not None:
            status, page = answer
            headers, reply = {"Content-Type": "text/html"}, page.encode()
        else:
            upstream = http.client.HTTPConnection(self.server.upstream, timeout=60)
            skip = {"host", "content-length", "connection", "transfer-encoding"}
            upstream.request(self.command, self.path, body=body, headers={
                k: v for k, v in self.headers.items() if k.lower() not in skip})
            got = upstream.getresponse()
            status, reply = got.status, got.read()
            headers = {k: v for k, v in got.getheaders() if k.lower() not in skip}
            upstream.close()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any

    def log_message(self, *args):
        pass


def driftctl(*args: str) -> tuple[int, str, str]:
    """The command line run in this process: status, out, err."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def quick_http(monkeypatch):
    """MLflow's HTTP settings for a final refusal, restored after the test (the command
    line sets them for its process)."""
    for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),
                       ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
                       ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")):
        monkeypatch.setenv(key, value)


@pytest.mark.slow
@pytest.mark.server
def test_a_proxy_refusing_a_large_upload_is_one_error_without_the_password(
        server_uri, tmp_path, quick_http):
    register("too-large")
    data = tmp_path / "batch.parquet"
    make_frame(300, 5).drop(columns="y").to_parquet(data)
    uploads = lambda method, path: (  # noqa: E731
        TOO_LARGE if method == "PUT" and "/mlflow-artifacts/" in path else None)
    with Server.running(uploads, upstream=server_uri) as address:
        code, out, err = driftctl("--tracking-uri", f"http://alice:{ENCODED}@{address}",
                                  "log-batch", "--model", "too-large", "--data", str(data))
    assert code == 2, err
    assert "hunter2" not in out + err and "Traceback" not in err
    assert err.startswith(f"driftctl log-batch: error: http://***@{address} answered HTTP 413 "
                          "Request Entity Too Large to an artifact upload (PUT http://***@"
                          f"{address}/api/2.0/mlflow-artifacts/artifacts/"), err
    assert "client_max_body_size" in err and "proxy-body-size" in err


@pytest.mark.parametrize(("answer", "said", "fix"), [
    (TOO_LARGE, "{at} answered HTTP 413 Request Entity Too Large to an artifact download (GET "
     "{at}/api/2.0/mlflow-artifacts/artifacts)\n", "client_max_body_size"),
    (SIGN_IN, "MLflow (sqlite:///mlflow.db) answered with something that is not its JSON: ",
     "MLFLOW_TRACKING_TOKEN"),
])
def test_a_failed_download_is_one_error_without_the_password(tmp_path, monkeypatch, answer,
                                                             said, fix):
    from mlflow.artifacts import download_artifacts

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    with Server.running(lambda method, path: answer) as address, \
            pytest.raises(TrackingError) as info, tracking.translated_errors():
        download_artifacts(f"http://alice:{ENCODED}@{address}/api/2.0/mlflow-artifacts/"
                           "artifacts/1/run/artifacts/baseline?X-Signature=s3cret",
                           dst_path=str(tmp_path))
    shown = f"{info.value.problem}\n{info.value.fix}"
    assert "hunter2" not in shown and "s3cret" not in shown
    assert shown.startswith(said.format(at=f"http://***@{address}")), shown
    assert fix in info.value.fix


@pytest.mark.parametrize(("answer", "fix"), [
    (TOO_LARGE, "client_max_body_size"),
    ((502, "<html><body>502 Bad Gateway</body></html>"), "see the log of the server"),
])
def test_a_rest_call_a_proxy_refuses_gets_the_fix_for_its_status(quick_http, answer, fix):
    from mlflow.tracking import MlflowClient

    with Server.running(lambda method, path: answer) as address, \
            tracking.use_client(MlflowClient(f"http://alice:{ENCODED}@{address}")) as client, \
            pytest.raises(TrackingError) as info, tracking.translated_errors():
        client.search_experiments()
    assert "hunter2" not in str(info.value)
    assert info.value.problem.startswith(f"MLflow (http://***@{address}) reported: ")
    assert str(answer[0]) in info.value.problem and fix in info.value.fix


def test_an_internal_error_shows_its_trace_without_a_password(monkeypatch):
    """Exit 3 prints the trace to report: the password in any exception of its chain goes."""
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "t0ken-Pw")

    def bug(args):
        try:
            raise ValueError(f"for url: http://alice:{PASSWORD}@127.0.0.1:9/x with t0ken-Pw")
        except ValueError as exc:
            raise KeyError(f"as {ENCODED}") from exc

    monkeypatch.setattr(cli, "_run", bug)
    code, out, err = driftctl("--tracking-uri", f"http://alice:{PASSWORD}@127.0.0.1:9",
                              "monitor", "--model", "m")
    assert code == cli.EXIT_INTERNAL
    assert "Traceback" in err and "http://***@127.0.0.1:9/x" in err
    assert "hunter2" not in out + err and "t0ken" not in err
    assert "internal error" in err



def test_a_sign_in_page_instead_of_mlflow_is_one_error_before_anything_is_written(
        tmp_path, monkeypatch, quick_http):
    """A single sign-on proxy in front of MLflow answers every request with its sign-in page
    (a 200) until the client authenticates its way: the permission check says so."""
    monkeypatch.chdir(tmp_path)
    seen = []
    with Server.running(lambda method, path: seen.append((method, path)) or SIGN_IN) as address:
        code, out, err = driftctl("--tracking-uri", f"http://alice:{ENCODED}@{address}",
                                  "cycle", "--model", "credit")
    assert code == 2, err
    assert "Traceback" not in err and "hunter2" not in out + err
    assert err.startswith(
        f"driftctl cycle: error: http://***@{address}/api/2.0/mlflow/users/current answered "
        "HTTP 200 with text/html, not MLflow's JSON"), err
    assert "MLFLOW_TRACKING_TOKEN" in err and "--tracking-uri" in err
    assert {method for method, _ in seen} == {"GET"}  # asked, wrote nothing


@pytest.mark.slow
@pytest.mark.server
def test_the_demo_shows_its_tracking_server_without_the_password(server_uri, capsys,
                                                                 monkeypatch):
    from controller.demo.run import run_demo

    # As `driftctl demo` does: MLflow's own run links are not the demo's to print.
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

    at = server_uri.replace("http://", f"http://alice:{ENCODED}@")
    tracking.set_tracking_uri(at)
    run_demo(weeks=0, train_rows=300)
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert out.count(at.replace(f"alice:{ENCODED}", "***")) == 2, out
