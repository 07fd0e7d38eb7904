"""The policy is validated whole when it is built: from a TOML file, a dict or the
constructor, per-feature overrides included."""

from __future__ import annotations

import re
import tomllib

import pytest

from controller._errors import PolicyError
from controller.policy import Policy, Rule

# Each of these used to pass Policy.from_toml and fail only when the feature was judged.
FEATURE_PROBLEMS = [
    ("[features.age]\nstatistic = 'bogus'\n", "'statistic' parameter of [features.'age']"),
    ("[features.age]\nstatistic = 'chi2'\n", "'statistic' parameter of [features.'age']"),
    ("[features.age]\ntest = 'anderson'\n", "'test' parameter of [features.'age']"),
    ("[features.age]\nmin_effect = -1\n", "'min_effect' parameter of [features.'age']"),
    ("[features.age]\nmin_effect = 'high'\n", "'min_effect' parameter of [features.'age']"),
    ("[features.age]\nthreshold = 'x'\n", "'threshold' parameter of [features.'age']"),
    ("[features.age]\nignore = 'no'\n", "'ignore' parameter of [features.'age']"),
    ("[features.age]\nbins = 3\n", "unknown key(s) ['bins'] in [features.'age']"),
    ("[features]\nage = 1\n", "[features.'age'] of the policy must be a table"),
]


@pytest.mark.parametrize("text, needle", FEATURE_PROBLEMS)
def test_feature_overrides_are_checked_when_the_file_is_loaded(tmp_path, text, needle):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    assert needle in info.value.problem
    assert info.value.fix  # every policy error says how to fix it


@pytest.mark.parametrize("text, needle", FEATURE_PROBLEMS)
def test_feature_overrides_are_checked_from_a_dict_and_the_constructor(text, needle):
    data = tomllib.loads(text)
    with pytest.raises(PolicyError, match=re.escape(needle)):
        Policy.from_dict(data)
    with pytest.raises(PolicyError) as info:
        Policy(features=data["features"])
    assert needle in info.value.problem


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"features": 3}, "[features] of the policy must be a table"),
        ({"drift": 3}, "[drift] of the policy must be a table"),
        ({"drift": "fdr"}, "[drift] of the policy must be a table"),
        ({"drift": {"numeric": 3}}, "[drift.numeric] of the policy must be a table"),
    ],
)
def test_sections_that_are_not_tables(data, needle):
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    assert needle in info.value.problem


def test_an_override_that_does_not_suit_the_features_kind_names_the_kind(tmp_path):
    """The one per-feature check left for judging time: kinds come from the baseline."""
    path = tmp_path / "policy.toml"
    path.write_text("[features.zip]\nstatistic = 'ks'\ntest = 'ks'\n")
    policy = Policy.from_toml(path)
    assert policy.rule("zip", "numeric") == Rule("ks", "ks", 0.1)
    with pytest.raises(PolicyError) as info:
        policy.rule("zip", "categorical")
    assert "'statistic' parameter of [features.'zip']" in info.value.problem
    assert "for categorical features" in info.value.problem
    assert "'ks'" in info.value.problem


def test_valid_overrides_load_and_apply():
    policy = Policy.from_dict(
        {
            "features": {
                "age": {"statistic": "ks", "min_effect": 0.2, "threshold": 0.3},
                "zip": {"ignore": True},
                "member": {"statistic": "hellinger"},
            }
        }
    )
    assert policy.rule("age", "numeric") == Rule("ks", "ks", 0.2, threshold=0.3)
    assert policy.rule("zip", "categorical").ignore
    assert policy.rule("member", "boolean") == Rule("hellinger", "chi2", 0.035)
    assert policy.rule("other", "numeric") == Policy().numeric


ALERT_PROBLEMS = [
    ("webhook = 'ftp://hooks.example/x'", "'webhook' parameter of [alerts] must be an http"),
    ("webhook = 'https:///no-host'", "'webhook' parameter of [alerts]"),
    ("format = 'xml'", "'format' parameter of [alerts] must be 'json' or 'slack'"),
    ("smtp = 'mail.example:25'\nto = ['a@example.com']", "'smtp' parameter of [alerts]"),
    ("smtp = 'smtp://mail.example:port'\nto = ['a@example.com']", "'smtp' parameter"),
    ("smtp = 'smtp://mail.example:25'", "'to' parameter of [alerts] must be a list of at least"),
    ("smtp = 'smtp://mail.example'\nto = 'a@example.com'", "'to' parameter of [alerts]"),
    ("to = ['a@example.com']", "'smtp' parameter of [alerts] must be smtp://host[:port] when"),
    ("smtp = 'smtp://m'\nto = ['a@x']\nfrom = 'driftctl'", "'from' parameter of [alerts]"),
    ("repeat_after = '0h'", "'repeat_after' parameter of [alerts] must be a duration > 0"),
    ("repeat_after = 'daily'", "'repeat_after' parameter"),
    ("repeat_after = 3600", "'repeat_after' parameter"),
    ("recovery = 'yes'", "'recovery' parameter of [alerts] must be true or false"),
    ("ui_url = 'mlflow.example'", "'ui_url' parameter of [alerts]"),
    ("secret = 'abc'", "unknown key(s) ['secret'] in [alerts]"),
    # Each failed only at delivery, every cycle: a space, a line break, non-ASCII.
    ("webhook = 'https://hooks.example/a b'", "'webhook' parameter of [alerts]"),
    ("webhook = 'https://hooks.example/caf\u00e9'", "'webhook' parameter of [alerts]"),
    ("smtp = 'smtp://m'\nto = ['a@x\\r\\nBcc: b@y']", "'to' parameter of [alerts]"),
    ("smtp = 'smtp://m'\nto = ['a@x']\nfrom = 'd@x\\nBcc: b@y'", "'from' parameter"),
    ("smtp = 'smtp://m'\nto = ['\u00e9@x']", "'to' parameter of [alerts]"),
]


@pytest.mark.parametrize("text, needle", ALERT_PROBLEMS)
def test_alert_settings_are_checked_when_the_file_is_loaded(tmp_path, text, needle):
    path = tmp_path / "policy.toml"
    path.write_text(f"[alerts]\n{text}\n")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    assert needle in info.value.problem
    assert info.value.fix


def test_a_bad_webhook_url_is_not_repeated_in_the_error():
    """A webhook URL may carry its token (Slack's do)."""
    with pytest.raises(PolicyError) as info:
        Policy.from_dict({"alerts": {"webhook": "htps://hooks.slack.com/services/T0/B0/tok"}})
    assert "tok" not in str(info.value)


def test_alert_settings_load():
    policy = Policy.from_dict({"alerts": {
        "webhook": "https://hooks.slack.com/services/T0/B0/x", "format": "slack",
        "smtp": "smtps://mail.example:465", "to": ["oncall@example.com"],
        "from": "ml@example.com", "repeat_after": "90m", "recovery": True,
    }})
    a = policy.alerts
    assert a.enabled and a.format == "slack" and a.to == ("oncall@example.com",)
    assert a.sender == "ml@example.com" and a.repeat_seconds == 5400 and a.recovery
    assert not Policy().alerts.enabled and Policy().alerts.repeat_seconds == 24 * 3600


def test_parse_duration():
    from controller.policy import parse_duration

    assert [parse_duration(t) for t in ("90s", "30m", "1.5h", "7d")] == [90, 1800, 5400, 604800]
    for bad in ("0h", "nan", "inf", "-1h", "1w", "", "24", 3600, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


TRACKING_PROBLEMS = [
    ("deadline = '0s'", "'deadline' parameter of [tracking] must be a duration > 0"),
    ("deadline = 120", "'deadline' parameter of [tracking]"),
    ("deadline = 'soon'", "'deadline' parameter of [tracking]"),
    ("retries = -1", "'retries' parameter of [tracking] must be an int in the range [0, 10]"),
    ("retries = 11", "'retries' parameter of [tracking]"),  # MLflow refuses more than 10
    ("retries = 2.5", "'retries' parameter of [tracking]"),
    ("retries = true", "'retries' parameter of [tracking]"),
    ("timeout = '5s'", "unknown key(s) ['timeout'] in [tracking]"),
]


@pytest.mark.parametrize("text, needle", TRACKING_PROBLEMS)
def test_tracking_settings_are_checked_when_the_file_is_loaded(tmp_path, text, needle):
    path = tmp_path / "policy.toml"
    path.write_text(f"[tracking]\n{text}\n")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    assert needle in info.value.problem
    assert info.value.fix


def test_tracking_settings_load_and_size_mlflows_retries():
    from controller.tracking import http_settings

    t = Policy.from_dict({"tracking": {"deadline": "2m", "retries": 5}}).tracking
    assert (t.deadline_seconds, t.retries) == (120, 5)
    assert Policy().tracking.deadline_seconds == 1800 and Policy().tracking.retries == 2
    for deadline in (5, 20, 45, 120, 1800, 86400):
        for retries in range(11):
            s = {k: int(v) for k, v in http_settings(deadline, retries).items()}
            assert s["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == retries
            assert 2 <= s["MLFLOW_HTTP_REQUEST_TIMEOUT"] <= 120
            # Every try timing out, and urllib3's backoff (none before the first retry, at
            # most one second of jitter each) fit in the deadline, unless the 2 s floor
            # of the timeout alone exceeds it: the watchdog ends those.
            backoff = sum(s["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] * 2 ** (n - 1) + 1
                          for n in range(2, retries + 1))
            worst = (retries + 1) * s["MLFLOW_HTTP_REQUEST_TIMEOUT"] + backoff
            assert worst <= deadline or s["MLFLOW_HTTP_REQUEST_TIMEOUT"] == 2
    assert http_settings(1800, 3)["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "2"  # MLflow's


def test_the_watchdog_ends_a_settled_command_with_its_status_and_its_output():
    """A command that reported its outcome and then hangs in its exit handlers (ending a
    run against a server that is gone) exits at the deadline with that outcome's status,
    and what it printed to a pipe is not lost with the process."""
    import os
    import subprocess
    import sys

    script = (
        "import time\n"
        "from controller.tracking import Watchdog\n"
        "w = Watchdog(1, 'cycle', 2).start()\n"
        "print('{\"verdict\": \"drift\"}')\n"
        "w.settle(1)\n"
        "time.sleep(30)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe buffers
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 1 and proc.stdout == '{"verdict": "drift"}\n', proc
    assert proc.stderr == ""
