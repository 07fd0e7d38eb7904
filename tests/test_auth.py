"""driftctl against an MLflow server with basic-auth: each command as an account granted
exactly what ``NEEDS`` says, as a READ-only account and as an anonymous caller; and no
secret driftctl is given in what it writes or prints.

One server for the module (starting one takes half a minute on two busy cores). The table
runs in pipeline order: each command is refused for the READ-only and the anonymous caller
first (one error, exit 2, the registry and runs untouched), then run by a new account with
its exact grants (the "owner" row), which moves the state on for the next command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from conftest import (
    _free_port,
    changed_concept,
    make_frame,
    register,
    run_cli,
    stop_server,
    wait_until_healthy,
)
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from test_alerts import Receiver

from controller import cli, tracking
from controller.inputs.batches import log_batch
from controller.tracking.connection import NEEDS
from controller.tracking.runs import DISCARDED

pytestmark = [pytest.mark.slow, pytest.mark.server]

ADMIN = ("admin", "admin-Pw-3k9Xq")
OWNER = ("ctl", "ctl-Pw-7hT2m")
READER = ("viewer", "viewer-Pw-5nB8w")
MODEL = "credit"
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def start_auth_server(root: Path, env: dict | None = None, store: Path | None = None):
    """A real ``mlflow server --app-name basic-auth`` on 127.0.0.1 with its own user store
    (``default_permission = READ``) and an admin; returns (process, url). ``store``: an
    initialised tracking database to start from (a copy), sparing the server its
    migrations."""
    if store is not None:
        shutil.copy(store, root / "mlflow.db")
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN[0]}\n"
        f"admin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Each request checks a scrypt hash otherwise: about a second on a busy machine.
        "auth_cache_ttl_seconds = 600\n"
    )
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed by stop_server()
    server_env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
         "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**server_env, "MLFLOW_AUTH_CONFIG_PATH": str(config),
             "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only-key", **(env or {})},
    )
    proc.log = log
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, root / "server.log")
    except RuntimeError:
        proc.log.close()
        raise
    return proc, url


def login(account: tuple[str, str] | None) -> None:
    """Make the MLflow client in this process act as ``account`` (None: anonymous)."""
    for key, value in zip(CREDENTIALS, account or (None, None), strict=True):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def grant_only(user: str, on_experiment: str, on_model: str) -> tuple[str, str]:
    """A new account with these permissions on ``driftctl-credit`` and 'credit', and the
    server's default (READ) elsewhere: (user, password)."""
    login(ADMIN)
    admin = get_app_client("basic-auth", tracking_uri=mlflow.get_tracking_uri())
    account = (user, f"{user}-Pw-4kZ8q")
    admin.create_user(*account)
    experiment = MlflowClient().get_experiment_by_name(f"driftctl-{MODEL}").experiment_id
    admin.grant_user_permission(user, "experiment", experiment, on_experiment)
    admin.grant_user_permission(user, "registered_model", MODEL, on_model)
    return account


def snapshot() -> dict:
    """Everything a command may write, read by the admin: runs (deleted ones too) with
    their status, tags, parameters and metrics, every version with its tags, aliases
    and description, and the webhooks."""
    login(ADMIN)
    c = MlflowClient()
    experiments = c.search_experiments(view_type=mlflow.entities.ViewType.ALL)
    runs = c.search_runs([e.experiment_id for e in experiments],
                         run_view_type=mlflow.entities.ViewType.ALL, max_results=5000)
    model = c.get_registered_model(MODEL)
    return {
        "experiments": sorted(e.name for e in experiments),
        "runs": {r.info.run_id: (r.info.status, r.info.lifecycle_stage, r.data.tags,
                                 r.data.params, r.data.metrics) for r in runs},
        "aliases": model.aliases,
        "versions": {v.version: (v.tags, v.description, v.status)
                     for v in c.search_model_versions(f"name='{MODEL}'")},
        "webhooks": [(w.name, w.url, w.events) for w in c.list_webhooks()],
    }


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, template_db):
    """The server, its users, and the model 'credit' registered by its owner ``ctl``
    (the creator gets MANAGE), with two labelled batches already logged."""
    root = tmp_path_factory.mktemp("auth")
    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "MLFLOW_TRACKING_URI")}
    # Webhooks to 127.0.0.1 over http, as `driftctl webhook install` creates here.
    proc, url = start_auth_server(root, store=template_db, env={
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"})
    cwd = os.getcwd()
    os.chdir(root)
    try:
        login(ADMIN)
        admin = get_app_client("basic-auth", tracking_uri=url)
        for user, password in (OWNER, READER):
            admin.create_user(user, password)
        os.environ["MLFLOW_TRACKING_URI"] = url
        mlflow.set_tracking_uri(url)
        login(OWNER)
        register(MODEL)
        for week in range(2):
            log_batch(MODEL, changed_concept(600, 30 + week), target="y")
        frame = changed_concept(600, 32)
        frame["id"] = range(len(frame))
        frame.to_parquet(root / "labelled.parquet")
        frame.drop(columns="y").to_parquet(root / "batch.parquet")
        frame[["id", "y"]].to_parquet(root / "labels.parquet")
        make_frame(800, 9).to_parquet(root / "train.parquet")
        yield url, root
    finally:
        os.chdir(cwd)
        mlflow.set_tracking_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop_server(proc, proc.log)


def driftctl(*args: str) -> tuple[int, str, str]:
    """Run the command line in this process (its imports are paid once): status, out, err."""
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def _approve() -> None:
    login(OWNER)
    MlflowClient().set_model_version_tag(MODEL, "2", "approval", "approved")


# Pipeline order: each owner's run leaves what the next command needs (a challenger to
# approve and promote, a previous champion to roll back to).
COMMANDS = {
    "baseline": (["--version", "1", "--data", "train.parquet", "--target", "y"], None),
    "log-batch": (["--data", "labelled.parquet", "--id-col", "id", "--target", "y"], None),
    "log-labels": (["--data", "labels.parquet", "--id-col", "id", "--target", "y"], None),
    "monitor": (["--last", "1"], None),
    "retrain": ([], None),
    "promote": ([], _approve),
    "rollback": ([], None),
    "cycle": (["--last", "1"], None),
    "serve": ([], None),  # and a free port: its owner's run lasts until its first action
    "webhook install": (["--url", "http://127.0.0.1:8787/mlflow-webhook"], None),
}
ACCOUNTS = {"reader": READER, "anonymous": None, "owner": OWNER, "admin": ADMIN}
WORKS_FOR = {"webhook install": "admin"}  # else the owner; MLflow keeps webhooks to admins
ROWS = [(c, a) for c in COMMANDS for a in ACCOUNTS if a != "admin" or c in WORKS_FOR]


def refusal(command: str, account: str) -> str:
    """The error expected: the credentials an anonymous caller did not give, that only an
    admin manages webhooks, or what a READ-only account lacks (on the model, checked
    first, else on the experiment)."""
    if account == "anonymous":
        return "no credentials were given (UNAUTHENTICATED)"
    user = ACCOUNTS[account][0]
    if command in WORKS_FOR:
        return f"user '{user}' is not an admin, and only admins may manage webhooks"
    on_model = NEEDS[command][1]
    if on_model != "READ":
        return f"user '{user}' lacks {on_model} on registered model 'credit', it has READ"
    return f"user '{user}' lacks EDIT on experiment 'driftctl-credit', it has READ"


def _serve_until_it_acts(port: int) -> tuple[int, str, dict]:
    """``driftctl serve`` in this process until its start-up promote is done, then stopped
    as a service manager stops it (SIGTERM): status, stderr and its /health then."""
    health: dict = {}

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not health.get("actions"):
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=5) as r:
                health.update(json.load(r))
            time.sleep(0.2)
        if health:  # it answered, so its handler is in place: never signal pytest itself
            os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code, _, err = driftctl("serve", "--model", MODEL, "--port", str(port))
    watcher.join()
    return code, err, health


@pytest.mark.parametrize(("command", "account"), ROWS, ids=[f"{c}-{a}" for c, a in ROWS])
def test_each_command_works_for_its_owner_and_is_refused_cleanly_otherwise(
    auth_server, monkeypatch, command, account
):
    args, prepare = COMMANDS[command]
    monkeypatch.setenv("DRIFTCTL_WEBHOOK_SECRET", "hook-Sig-6gHq2Vw9")
    if prepare and account == "reader":
        prepare()
    before = snapshot()
    login(ACCOUNTS[account])
    if account == WORKS_FOR.get(command, "owner"):
        if command in NEEDS:  # as an account granted what NEEDS says, no more
            login(grant_only(f"exactly-{command}", *NEEDS[command]))
        if command == "serve":
            code, err, health = _serve_until_it_acts(_free_port())
            assert code == 0, err
            assert health["last_action"] == "promote" and health["last_error"] is None, health
            return
        code, out, err = driftctl(*command.split(), "--model", MODEL, *args)
        assert code == 0, err
        assert snapshot() != before
        return
    code, out, err = driftctl(*command.split(), "--model", MODEL, *args)
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    (problem, fix) = err.strip().splitlines()
    assert refusal(command, account) in problem, problem
    assert "fix:" in fix and ("ask an admin to grant" in fix or "MLFLOW_TRACKING_USERNAME" in fix)
    assert snapshot() == before


def test_an_approval_needs_edit_on_the_model(auth_server):
    """MLflow refuses an approval tag from an account without EDIT on the model: what the
    registry guarantees about who approved (it records no actor)."""
    login(READER)
    with pytest.raises(MlflowException) as refused:
        MlflowClient().set_model_version_tag(MODEL, "1", "approval", "approved")
    assert refused.value.error_code == "PERMISSION_DENIED"
    login(ADMIN)
    assert "approval" not in MlflowClient().get_model_version(MODEL, "1").tags


def _seam_writes():
    """Writes refused by the server itself (not checked up front), by what they need."""
    from controller import tracking

    def run():
        return next(r.info.run_id for r in tracking.client().search_runs(
            [tracking.client().get_experiment_by_name(f"driftctl-{MODEL}").experiment_id]))

    def upload():
        Path("note.txt").write_text("x")
        tracking.client().log_artifact(run(), "note.txt")

    c = tracking.client
    return {
        "set alias": (lambda: c().set_registered_model_alias(MODEL, "x", "1"),
                      "EDIT on registered model 'credit'"),
        "remove alias": (lambda: c().delete_registered_model_alias(MODEL, "champion"),
                         "MANAGE on registered model 'credit'"),
        "version tag": (lambda: c().set_model_version_tag(MODEL, "1", "k", "v"),
                        "EDIT on registered model 'credit'"),
        "new run": (lambda: c().create_run(
            c().get_experiment_by_name(f"driftctl-{MODEL}").experiment_id),
                    "EDIT on experiment 'driftctl-credit'"),
        "run tag": (lambda: c().set_tag(run(), "k", "v"), "EDIT on experiment 'driftctl-credit'"),
        "delete run": (lambda: c().delete_run(run()), "MANAGE on experiment 'driftctl-credit'"),
        "artifact": (upload, "EDIT on experiment 'driftctl-credit'"),
    }


@pytest.mark.parametrize("write", list(_seam_writes()))
def test_a_refused_write_names_what_it_needed(auth_server, write):
    """MLflow's 403 says only "Permission denied": the error names the permission, the
    model or experiment, and the fix."""
    from controller import tracking
    from controller._errors import TrackingError

    call, needed = _seam_writes()[write]
    login(READER)
    with pytest.raises(TrackingError) as refused, tracking.translated_errors():
        call()
    assert f"user 'viewer' lacks {needed} (PERMISSION_DENIED)" in refused.value.problem
    assert f"ask an admin to grant {needed.split(' on ')[0]} on" in refused.value.fix


def test_a_refused_webhook_call_says_it_needs_an_admin(auth_server):
    """Every webhook endpoint is admin-only: MLflow's 403 becomes that, not a permission on
    some experiment."""
    from controller import tracking
    from controller._errors import TrackingError

    login(OWNER)
    with pytest.raises(TrackingError) as refused, tracking.translated_errors():
        tracking.webhooks_named("driftctl-credit")
    assert "user 'ctl' is not an admin, and only admins may manage webhooks" in (
        refused.value.problem)
    assert "an admin's MLFLOW_TRACKING_USERNAME" in refused.value.fix


def test_a_partial_grant_is_refused_before_anything_is_written(auth_server):
    """EDIT on the model lets ``monitor`` and ``retrain`` run but not a promotion, which
    removes an alias (MANAGE): ``promote`` is refused up front, not half-way."""
    editor = grant_only("editor", "EDIT", "EDIT")
    before = snapshot()
    login(editor)
    code, _, err = driftctl("rollback", "--model", MODEL)
    assert code == 2 and "Traceback" not in err
    assert "user 'editor' lacks MANAGE on registered model 'credit', it has EDIT" in err
    assert "ask an admin to grant MANAGE on registered model 'credit' to 'editor'" in err
    assert snapshot() == before
    # What EDIT is enough for: a batch (it reads the model, writes a run).
    login(editor)
    code, _, err = driftctl("log-batch", "--model", MODEL, "--data", "batch.parquet",
                            "--id-col", "id")
    assert code == 0, err



def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.parametrize(("on_experiment", "deleted"), [("EDIT", False), ("MANAGE", True)])
def test_a_failed_run_is_deleted_only_with_manage_on_the_experiment(
    auth_server, on_experiment, deleted
):
    """A command whose run fails deletes it, which needs MANAGE on the experiment: with
    EDIT the run stays, FAILED. Either way the error reported is the one that stopped the
    command, not the refused delete. The run fails here because the account loses EDIT on
    the model while ``baseline`` is paused just after creating its run."""
    url, _ = auth_server
    user = grant_only(f"baseliner-{on_experiment.lower()}", on_experiment, "EDIT")
    proc = run_cli("baseline", "--model", MODEL, "--version", "1", "--data", "train.parquet",
                   "--target", "y", wait=False,
                   env={"DRIFTCTL_FAILPOINT": "started-baseline:stop",
                        **dict(zip(CREDENTIALS, user, strict=True))})
    while not _stopped(proc.pid):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    login(ADMIN)
    get_app_client("basic-auth", tracking_uri=url).revoke_user_permission(
        user[0], "registered_model", MODEL)  # READ by default
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2, err  # one error
    assert (f"user '{user[0]}' lacks EDIT on registered model 'credit' (PERMISSION_DENIED)"
            in err), err
    experiment = MlflowClient().get_experiment_by_name(f"driftctl-{MODEL}").experiment_id
    (run,) = MlflowClient().search_runs(
        [experiment], f"tags.`mlflow.user` = '{user[0]}'",
        run_view_type=mlflow.entities.ViewType.ALL)
    assert run.info.status == "FAILED"
    assert run.info.lifecycle_stage == ("deleted" if deleted else "active")

def test_without_manage_a_run_or_version_to_delete_is_marked_instead(auth_server):
    """Two controllers racing leave a run or a version to delete, which needs MANAGE; an
    account with EDIT marks them so that no reader takes them, and goes on."""
    user = grant_only("discarder", "EDIT", "EDIT")
    login(ADMIN)
    experiment = MlflowClient().get_experiment_by_name(f"driftctl-{MODEL}").experiment_id
    login(user)
    run = MlflowClient().create_run(experiment, tags={"purpose": "discarded"})
    tracking.discard_run(run.info.run_id, "another controller's challenger was chosen")
    run = MlflowClient().get_run(run.info.run_id)
    assert run.info.status == "FAILED" and run.info.lifecycle_stage == "active"
    assert run.data.tags[DISCARDED] == "another controller's challenger was chosen"
    assert tracking.delete_version(MODEL, "1") is False  # refused: version 1 stays
    assert MlflowClient().get_model_version(MODEL, "1").version == "1"

    login(ADMIN)  # with MANAGE (the admin's), deleted
    run = MlflowClient().create_run(experiment, tags={"purpose": "discarded"})
    tracking.discard_run(run.info.run_id, "created twice")
    assert MlflowClient().get_run(run.info.run_id).info.lifecycle_stage == "deleted"


# No secret in what driftctl writes or prints: the tracking password, the alert signing
# secret, the webhook URL's token path and the webhook secret.
ALERT_SECRET = "alert-Sig-8fQz1LmN0pW"
WEBHOOK_SECRET = "hook-Sig-3vKx9TyR2sD"
TOKEN = "T7Q/B9Z/tokenPathXk2Jw5"


def _everything_written(root: Path) -> bytes:
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


def test_no_secret_in_runs_artifacts_versions_or_output(auth_server, tmp_path, monkeypatch,
                                                       capfd):
    """Cycles that send alerts, with the password in the environment; one delivery fails
    (its error is recorded) and a command fails with the password in its tracking URI.
    Then everything on the server (this model's runs and the table's above) and every
    output is searched."""
    url, _ = auth_server
    secrets = [OWNER[1], ALERT_SECRET, WEBHOOK_SECRET, TOKEN, TOKEN.rsplit("/", 1)[1]]
    monkeypatch.setenv("DRIFTCTL_ALERT_SECRET", ALERT_SECRET)
    monkeypatch.setenv("DRIFTCTL_WEBHOOK_SECRET", WEBHOOK_SECRET)
    printed = []
    with Receiver.running() as receiver:
        login(OWNER)
        register("scoring")
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/services/{TOKEN}"
        (tmp_path / "policy.toml").write_text(
            f'[alerts]\nwebhook = "{hook}"\nui_url = "{url}"\n'
            "[multivariate]\nenabled = false\n"
        )
        receiver.status = 500  # the first delivery fails: its error is recorded
        for seed in (10, 12, 13):
            batch = tmp_path / f"b{seed}.parquet"
            make_frame(1500, seed, shift=0.8).drop(columns="y").to_parquet(batch)
            for args in (["log-batch", "--data", str(batch)],
                         ["cycle", "--last", "1", "--policy", str(tmp_path / "policy.toml")]):
                code, out, err = driftctl(*args, "--model", "scoring")
                printed += [out, err]
                assert code == 0, err
            receiver.status = 200
        assert receiver.requests and {r["status"] for r in receiver.requests} == {200, 500}
        # A failing command, with the password in its tracking URI too.
        host = url.removeprefix("http://")
        code, out, err = driftctl("monitor", "--model", "nope", "--tracking-uri",
                                  f"http://{OWNER[0]}:{OWNER[1]}@{host}")
        printed += [out, err]
        assert code == 2 and "no registered model named 'nope' at http://***@" in err
        mlflow.set_tracking_uri(url)
        login(("ctl", "not-the-password"))
        code, out, err = driftctl("cycle", "--model", "scoring")
        printed += [out, err]
        assert code == 2 and "UNAUTHENTICATED" in err
    captured = capfd.readouterr()
    printed = "\n".join([*printed, captured.out, captured.err])
    written = _everything_written(tmp_path)
    delivered = b"".join(r["body"] for r in receiver.requests)
    # What was searched holds what it should: the failed delivery's record (the webhook
    # shown by host), the reports, and the user name next to the password.
    assert b"HTTP 500" in written and b"<html" in written.lower()
    assert f"webhook http://127.0.0.1:{receiver.server_address[1]}".encode() in written
    assert b"'mlflow.user': 'ctl'" in written
    for secret in secrets:
        assert secret.encode() not in written, secret
        assert secret not in printed, secret
        assert secret.encode() not in delivered, secret
