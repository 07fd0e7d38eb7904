"""Shared fixtures: a real MLflow (sqlite in a temp dir, or a real server), data, models."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import sklearn
from mlflow.tracking import MlflowClient

from controller import tracking

FEATURES = ["x1", "x2", "segment", "flag"]
# Naming requirements spares MLflow's inference of them, which takes ~10 s per model.
PIP = [f"scikit-learn=={sklearn.__version__}"]


def _seeds() -> list[int]:
    """The seeds DRIFTCTL_TESTS_GLOBAL_RANDOM_SEED names: one ("42", the default), an
    inclusive range ("40-42"), or "all" (0 to 99)."""
    value = os.environ.get("DRIFTCTL_TESTS_GLOBAL_RANDOM_SEED", "42")
    if value == "all":
        return list(range(100))
    first, _, last = value.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    if not seeds or seeds[0] < 0 or seeds[-1] > 99:
        raise ValueError(f"DRIFTCTL_TESTS_GLOBAL_RANDOM_SEED={value!r}: use 0-99, a range or 'all'")
    return seeds


def pytest_generate_tests(metafunc):
    """A test that takes ``global_random_seed`` runs once per seed of ``_seeds``, as with
    scikit-learn's fixture of that name: it builds its own ``np.random.default_rng(seed)``,
    so its data do not depend on the other tests, and it must pass whatever the seed."""
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", _seeds())


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An initialised MLflow sqlite database; copying it spares every test the migrations."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def _tracking_at(uri: str, monkeypatch, tmp_path):
    """Point the API and CLI subprocesses at ``uri`` for one test, working in tmp_path."""
    monkeypatch.chdir(tmp_path)  # a sqlite store's default artifact root ./mlruns lands here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    # set_experiment exports the experiment to child processes; the next store lacks it.
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _copy_of(store: Path, monkeypatch, tmp_path):
    """A copy of the sqlite store ``store`` in tmp_path, for one test."""
    db = tmp_path / "mlflow.db"
    shutil.copy(store, db)
    yield from _tracking_at(f"sqlite:///{db}", monkeypatch, tmp_path)


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch, template_db) -> str:
    """A fresh sqlite tracking store in a temp dir, used by the API and the CLI alike."""
    yield from _copy_of(template_db, monkeypatch, tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240):
    """Until the ``mlflow server`` at ``url`` answers /health (20 to 60 s on two busy cores);
    a server that exits or never answers is killed, and its log raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlflow server at {url} did not start:\n{log.read_text()}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, template_db):
    """A real ``mlflow server`` subprocess on 127.0.0.1, started once per test session,
    that calls webhooks on 127.0.0.1."""
    root = tmp_path_factory.mktemp("server")
    db = root / "mlflow.db"
    shutil.copy(template_db, db)
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        # Webhooks to driftctl serve on 127.0.0.1 over http, and a webhook list that is
        # read again within a second of a change, not a minute.
        env={**os.environ, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
             "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_CACHE_TTL": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc, root / "server.log")
    yield url
    stop_server(proc, log)


def stop_server(proc: subprocess.Popen, log) -> None:
    """Stop a server the tests started (SIGTERM, then SIGKILL after 20 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture
def server_uri(mlflow_server, monkeypatch, tmp_path):
    """The session's real tracking server, for one test."""
    yield from _tracking_at(mlflow_server, monkeypatch, tmp_path)


def make_frame(n: int, seed: int = 0, *, shift: float = 0.0, flip_segment: bool = False):
    """Labelled tabular data: two numeric features, a categorical one and a boolean."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.lognormal(0.0, 0.5, n)
    p = [0.1, 0.2, 0.3, 0.4] if flip_segment else [0.4, 0.3, 0.2, 0.1]
    segment = rng.choice(["a", "b", "c", "d"], size=n, p=p)
    flag = rng.random(n) < 0.3
    logit = 1.5 * x1 - 0.8 * (x2 - 1) + np.where(segment == "a", 0.7, -0.2) + 0.5 * flag
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "segment": segment, "flag": flag, "y": y})


def fit_model(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline([
        ("encode", ColumnTransformer(
            [("seg", OneHotEncoder(handle_unknown="ignore"), ["segment"])],
            remainder="passthrough")),
        ("clf", LogisticRegression(max_iter=500)),
    ]).fit(frame[FEATURES], frame["y"])


def register_model(name: str, model, data=None, *, alias: str = "champion",
                   trusted: tuple[str, ...] = (), **baseline):
    """Log ``model`` in a training run, register it as ``name`` and give the version
    ``alias``; with ``data``, log its baseline in the same run (``baseline`` options go to
    ``log_baseline``). Returns (version, the baseline or None). ``trusted``: types MLflow's
    skops format must load (a forest's trees)."""
    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=PIP,
            **({"skops_trusted_types": list(trusted)} if trusted else {}))
        logged = None if data is None else tracking.log_baseline(data, model=model, **baseline)
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version)
    return version, logged


def register(name: str, *, baseline: bool = True, seed: int = 0, alias: str = "champion") -> str:
    """Train, register and alias the usual model (with its baseline unless ``baseline`` is
    false); returns the version."""
    model = fit_model(make_frame(3000, seed))
    data = make_frame(2000, seed + 1) if baseline else None
    return register_model(name, model, data, alias=alias, target="y")[0]


@pytest.fixture
def champion(sqlite_uri):
    """A registered model 'credit' with alias champion and a baseline."""
    register("credit")
    return "credit"


def changed_concept(n, seed, *, shuffle=False):
    """Same inputs as in training, but the label now follows x2 instead of x1."""
    frame = make_frame(n, seed)
    rng = np.random.default_rng(seed)
    y = (frame.x2 - frame.x2.median() + rng.normal(0, 0.2, n) > 0).astype(int)
    frame["y"] = rng.permutation(y.to_numpy()) if shuffle else y
    return frame


@pytest.fixture(scope="session")
def challenger_db(tmp_path_factory, template_db) -> Path:
    """A store where 'credit' has champion version 1 and a better challenger, version 2,
    awaiting approval (built once: retraining takes a while)."""
    from controller.inputs.batches import log_batch
    from controller.loop.retrain import retrain

    root = tmp_path_factory.mktemp("challenger")
    db = root / "mlflow.db"
    shutil.copy(template_db, db)
    cwd = os.getcwd()
    os.chdir(root)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        register("credit")
        for week in range(3):
            log_batch("credit", changed_concept(600, 30 + week), target="y")
        assert retrain("credit").version == "2"
    finally:
        mlflow.set_tracking_uri(None)
        os.chdir(cwd)
    return db


@pytest.fixture
def challenger(challenger_db, tmp_path, monkeypatch) -> str:
    """A copy of ``challenger_db`` for one test (artifacts stay where they were logged)."""
    yield from _copy_of(challenger_db, monkeypatch, tmp_path)


def run_cli(*args: str, env: dict | None = None, wait: bool = True):
    """Run the installed ``driftctl`` console script in a subprocess: (status, out, err),
    or the running process when ``wait`` is false."""
    exe = shutil.which("driftctl", path=os.path.dirname(sys.executable)) or "driftctl"
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen([exe, *args], env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300,
                          env=full_env)
    return proc.returncode, proc.stdout, proc.stderr


def run_together(*args: str, n: int = 2, timeout: float = 300) -> None:
    """Start ``n`` identical ``driftctl`` commands at once; each must succeed."""
    procs = [run_cli(*args, wait=False) for _ in range(n)]
    for p in procs:
        _out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err


def ledger_of(model: str) -> dict[str, str]:
    """The registry ledger's decisions (its parameters)."""
    from controller.loop import registry

    return MlflowClient().get_run(registry.ledger(model)).data.params


def aliases(model: str) -> dict[str, str]:
    return {k: str(v) for k, v in MlflowClient().get_registered_model(model).aliases.items()}


def status(model: str, version: str) -> str | None:
    return MlflowClient().get_model_version(model, version).tags.get("driftctl.status")


def runs_of(model: str, kind: str | None = None):
    """Every non-deleted run in the model's controller experiment (any status)."""
    exp = MlflowClient().get_experiment_by_name(tracking.EXPERIMENT.format(model=model))
    if exp is None:
        return []
    runs = MlflowClient().search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if kind is None or r.data.tags.get(tracking.KIND) == kind]
