"""No password or secret in what driftctl shows: URLs with any password, the secrets it
is given in the environment, MLflow's HTTP errors and an internal error's trace; and a
permission check that answers with one error when the server is not what it should be."""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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
