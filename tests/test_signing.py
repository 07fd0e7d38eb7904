"""Webhook signatures: driftctl's and MLflow's headers, checked against an independent
HMAC, and every malformed header refused with BadSignature, never another error."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from controller import signing

SECRET = "s3cret-signing-key-0123456789"


def test_a_signature_matches_an_independent_hmac_and_verify_refuses_what_it_should():
    body = b'{"a": 1}'
    sig = signing.sign(SECRET, "d-1", "1700000000", body)
    expected = hmac.new(SECRET.encode(), b"d-1.1700000000." + body, hashlib.sha256).digest()
    assert sig == "v1," + base64.b64encode(expected).decode()
    assert signing.sign(SECRET, "d-1", "1700000000", body.decode()) == sig
    signing.verify(SECRET, sig, "d-1", "1700000000", body, now=1700000100)
    for args, now, reason in [
        ((SECRET, sig, "d-1", "1700000000", b'{"a": 2}'), 1700000000, "does not match"),
        ((SECRET, sig, "d-2", "1700000000", body), 1700000000, "does not match"),
        (("other", sig, "d-1", "1700000000", body), 1700000000, "does not match"),
        ((SECRET, sig, "d-1", "1700000000", body), 1700000301, "old"),
        ((SECRET, sig, "d-1", "1700000000", body), 1699999000, "in the future"),
        ((SECRET, sig[3:], "d-1", "1700000000", body), 1700000000, "not of the form"),
        ((SECRET, sig, "d-1", "soon", body), 1700000000, "not unix seconds"),
        # float() took "nan": no age is over the limit, and a signature over it verified.
        ((SECRET, signing.sign(SECRET, "d-1", "nan", body), "d-1", "nan", body), 1700000000,
         "not unix seconds"),
    ]:
        with pytest.raises(signing.BadSignature, match=reason):
            signing.verify(*args, now=now)


def test_mlflow_style_headers_verify_with_the_same_functions():
    headers = signing.headers("MLflow", SECRET, "abc", b"{}", timestamp="1700000000")
    assert set(headers) == {"X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id"}
    lower = {k.lower(): v for k, v in headers.items()}  # as a server may hand them over
    assert signing.verify_headers("MLflow", SECRET, lower, b"{}", now=1700000001) == "abc"
    with pytest.raises(signing.BadSignature, match="X-MLflow-Signature is missing"):
        signing.verify_headers("MLflow", SECRET, {}, b"{}")


def _headers(**values) -> dict[str, str]:
    headers = signing.headers("Driftctl", SECRET, "d-1", b"{}", timestamp="1700000000")
    return {**headers, **{f"X-Driftctl-{k.replace('_', '-').title()}": v
                          for k, v in values.items()}}


@pytest.mark.parametrize("field, value, reason", [
    # int() refuses more than 4,300 digits with a ValueError, which crashed the handler.
    ("timestamp", "1" * 5000, "not unix seconds"),
    ("timestamp", "1" * 13, "not unix seconds"),
    ("timestamp", "", "not unix seconds"),
    ("timestamp", "+1700000000", "not unix seconds"),
    ("timestamp", "\uff11\uff17", "not unix seconds"),  # digits, but not ASCII ones
    ("signature", "v1," + "A" * 5000, "signature is not"),
    ("signature", "v1,\udc80", "signature is not"),  # could not be encoded to compare
    ("delivery_id", "d" * 5000, "delivery id is not"),
    ("delivery_id", "\udc80", "delivery id is not"),
    ("delivery_id", "d-1\n", "delivery id is not"),
])
def test_a_malformed_or_over_long_header_is_a_bad_signature(field, value, reason):
    with pytest.raises(signing.BadSignature, match=reason) as info:
        signing.verify_headers("Driftctl", SECRET, _headers(**{field: value}), b"{}",
                               now=1700000000)
    assert len(info.value.reason) < 200  # the reason is sent back: never the value whole
    args = {"signature": _headers()["X-Driftctl-Signature"], "delivery_id": "d-1",
            "timestamp": "1700000000", field: value}
    with pytest.raises(signing.BadSignature, match=reason):
        signing.verify(SECRET, args["signature"], args["delivery_id"], args["timestamp"],
                       b"{}", now=1700000000)


def test_the_longest_timestamp_and_a_long_delivery_id_still_verify():
    delivery = "d" * signing.MAX_VALUE
    for stamp in ("999999999999", "1"):
        sig = signing.sign(SECRET, delivery, stamp, b"{}")
        signing.verify(SECRET, sig, delivery, stamp, b"{}", now=int(stamp))
