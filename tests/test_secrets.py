"""No secret driftctl is given ends up in what it writes or prints: the tracking password,
the alert signing secret, the webhook URL's token path and the webhook secret.

Cycles that send alerts run against a basic-auth server with the password in the
environment, one delivery fails (its error is recorded), and a command fails with the
password in its tracking URI; then every tag, parameter, metric name, artifact (HTML
reports and the alerts outbox included), model version and the output are searched.
"""

from __future__ import annotations

import os

import mlflow
import pytest
from conftest import make_frame, register
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from test_alerts import Receiver
from test_auth import ADMIN, OWNER, driftctl, login, start_auth_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALERT_SECRET = "alert-Sig-8fQz1LmN0pW"
WEBHOOK_SECRET = "hook-Sig-3vKx9TyR2sD"
TOKEN = "T7Q/B9Z/tokenPathXk2Jw5"


@pytest.fixture
def receiver():
    with Receiver.running() as server:
        yield server


def _everything_written(root) -> bytes:
    """Every run's tags, parameters, metric names and artifact files (downloaded), every
    experiment's tags, and every model and version with its tags and description."""
    login(ADMIN)
    c = MlflowClient()
    out = []
    experiments = c.search_experiments(view_type=mlflow.entities.ViewType.ALL)
    out += [repr(e.tags) for e in experiments]
    runs = c.search_runs([e.experiment_id for e in experiments],
                         run_view_type=mlflow.entities.ViewType.ALL, max_results=5000)
    files = 0
    for run in runs:
        out += [repr(run.data.tags), repr(run.data.params), repr(sorted(run.data.metrics))]
        where = root / "downloaded" / run.info.run_id
        where.mkdir(parents=True)
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(where))
        for path in where.rglob("*"):
            if path.is_file():
                out.append(path.read_bytes().decode("latin-1"))
                files += 1
    for model in c.search_registered_models():
        out += [repr(model.tags), model.description or "", repr(model.aliases)]
        for v in c.search_model_versions(f"name='{model.name}'"):
            out += [repr(v.tags), v.description or "", v.source or "", v.run_link or ""]
    assert files > 20  # the reports, profiles and the outbox were read
    return "\n".join(out).encode("latin-1", "replace")


def test_no_secret_in_runs_artifacts_versions_or_output(tmp_path, receiver, monkeypatch, capfd):
    proc, url = start_auth_server(tmp_path)
    monkeypatch.chdir(tmp_path)
    secrets = [OWNER[1], ALERT_SECRET, WEBHOOK_SECRET, TOKEN, TOKEN.rsplit("/", 1)[1]]
    try:
        login(ADMIN)
        get_app_client("basic-auth", tracking_uri=url).create_user(*OWNER)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("DRIFTCTL_ALERT_SECRET", ALERT_SECRET)
        monkeypatch.setenv("DRIFTCTL_WEBHOOK_SECRET", WEBHOOK_SECRET)
        mlflow.set_tracking_uri(url)
        login(OWNER)
        register("credit")
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/services/{TOKEN}"
        (tmp_path / "policy.toml").write_text(
            f'[alerts]\nwebhook = "{hook}"\nui_url = "{url}"\n'
            "[multivariate]\nenabled = false\n"
        )
        receiver.status = 500  # the first delivery fails: its error is recorded
        for seed in (10, 12, 13):
            make_frame(1500, seed, shift=0.8).drop(columns="y").to_parquet(f"b{seed}.parquet")
            code, _, err = driftctl("log-batch", "--model", "credit", "--data", f"b{seed}.parquet")
            assert code == 0, err
            code, _, err = driftctl("cycle", "--model", "credit", "--last", "1",
                                    "--policy", "policy.toml")
            assert code == 0, err
            receiver.status = 200
        assert receiver.requests and {r["status"] for r in receiver.requests} == {200, 500}
        # A failing command, with the password in its tracking URI too.
        host = url.removeprefix("http://")
        code, _, err = driftctl("monitor", "--model", "nope", "--tracking-uri",
                                f"http://{OWNER[0]}:{OWNER[1]}@{host}")
        assert code == 2 and "no registered model named 'nope'" in err
        mlflow.set_tracking_uri(url)
        login(("ctl", "not-the-password"))
        code, _, err = driftctl("cycle", "--model", "credit", "--policy", "policy.toml")
        assert code == 2 and "UNAUTHENTICATED" in err
        printed = capfd.readouterr()
        written = _everything_written(tmp_path)
        delivered = b"".join(r["body"] for r in receiver.requests)
        # What was searched holds what it should: the failed delivery's record (the
        # webhook shown by host), the reports, and the user name next to the password.
        assert b"HTTP 500" in written and b"<html" in written.lower()
        assert f"webhook http://127.0.0.1:{receiver.server_address[1]}".encode() in written
        assert b"'mlflow.user': 'ctl'" in written
        for secret in secrets:
            assert secret.encode() not in written, secret
            assert secret not in printed.out and secret not in printed.err, secret
            assert secret.encode() not in delivered, secret
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
        stop(proc)
