"""The MLflow seam: only ``controller.tracking`` imports mlflow, it holds one client per
store (or the one injected), and reading a baseline writes nothing."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import mlflow
import pytest
from conftest import PIP, fit_model, make_frame
from mlflow.tracking import MlflowClient

from controller import tracking
from controller._errors import TrackingError
from controller.inputs.batches import log_batch
from controller.loop.cycle import monitor

PACKAGE = Path(__file__).resolve().parents[1] / "controller"
SEAM = PACKAGE / "tracking"


def _mlflow_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Every import of mlflow in a module, wherever it is (functions, TYPE_CHECKING
    blocks), as ``file:line name`` with the file relative to ``root``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif (  # importlib.import_module("mlflow...") or __import__("mlflow...")
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        else:
            continue
        found += [
            f"{path.relative_to(root)}:{node.lineno} {name}"
            for name in names
            if name == "mlflow" or name.startswith("mlflow.")
        ]
    return found


def test_only_the_seam_imports_mlflow():
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if SEAM not in p.parents]
    assert len(modules) > 20  # the walk found the package
    offenders = [hit for path in modules for hit in _mlflow_imports(path)]
    assert not offenders, "mlflow imported outside controller/tracking:\n" + "\n".join(offenders)


def test_the_rest_of_the_package_calls_the_seams_functions_not_its_client():
    """``tracking.client()`` is the seam's own: outside it, MLflow is reached through named
    functions, where retries and error translation live."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if SEAM not in path.parents
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in ("client", "use_client")
        and getattr(node.value, "id", None) == "tracking"
    ]
    assert not offenders, "tracking.client() used outside the seam:\n" + "\n".join(offenders)


def test_the_import_check_sees_every_form(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import mlflow.sklearn\n"
        "if TYPE_CHECKING:\n"
        "    from mlflow.entities import Run\n"
        "def f():\n"
        "    from mlflow import exceptions\n"
        "    import importlib\n"
        "    return importlib.import_module('mlflow.pyfunc')\n"
        "import mlflowlike\n"
    )
    assert _mlflow_imports(module, tmp_path) == [
        "m.py:2 mlflow.sklearn",
        "m.py:4 mlflow.entities",
        "m.py:6 mlflow",
        "m.py:8 mlflow.pyfunc",
    ]


def test_one_client_per_store_and_an_injected_one_takes_precedence(
    sqlite_uri, tmp_path, template_db, monkeypatch
):
    held = tracking.client()
    assert tracking.client() is held and held.tracking_uri == sqlite_uri
    other_db = tmp_path / "other.db"
    shutil.copy(template_db, other_db)
    other_uri = f"sqlite:///{other_db}"

    injected = MlflowClient(other_uri)
    with tracking.use_client(injected) as c:
        assert c is injected and tracking.client() is injected
        assert tracking.tracking_uri() == other_uri
        experiment = tracking.experiment_id("m")
        tracking.singleton_run(experiment, "m", "ledger", "registry ledger")
    assert tracking.client() is held
    assert held.get_experiment_by_name("driftctl-m") is None
    assert injected.get_experiment_by_name("driftctl-m").experiment_id == experiment
    assert [r.info.run_name for r in injected.search_runs([experiment])] == ["registry ledger"]

    # The held client follows the store MLflow points at, set in code or in the environment.
    mlflow.set_tracking_uri(other_uri)
    assert tracking.client().tracking_uri == other_uri
    assert tracking.experiment_id("m") == experiment
    mlflow.set_tracking_uri(sqlite_uri)
    assert tracking.client() is held
    mlflow.set_tracking_uri(None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other_uri)
    assert tracking.client().tracking_uri == other_uri


def test_an_error_mlflow_reports_becomes_a_tracking_error(sqlite_uri):
    with pytest.raises(TrackingError) as info, tracking.translated_errors():
        tracking.client().get_run("0" * 32)
    assert info.value.problem.startswith(f"MLflow ({sqlite_uri}) reported: ")
    assert "server is up" in info.value.fix


def test_reading_a_baseline_writes_nothing_and_monitoring_links_it(sqlite_uri):
    """A version registered after its baseline was logged is found through its run; the
    version's link to that run is written by the monitor, not by the read."""
    model = fit_model(make_frame(1000, 0))
    mlflow.set_experiment("training")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", pip_requirements=PIP)
        tracking.log_baseline(make_frame(500, 1), model=model, target="y")
    client = MlflowClient()
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "late").version
    client.set_registered_model_alias("late", "champion", version)

    mv = client.get_model_version("late", version)
    assert tracking.BASELINE_RUN not in mv.tags
    _, found = tracking.load_baseline(mv)
    assert found == run.info.run_id
    assert client.get_model_version("late", version).tags == mv.tags

    log_batch("late", make_frame(300, 2).drop(columns="y"))
    report = monitor("late")
    assert report.context["baseline_run_id"] == run.info.run_id
    assert client.get_model_version("late", version).tags[tracking.BASELINE_RUN] == (
        run.info.run_id
    )


def test_a_password_in_the_tracking_uri_is_never_shown():
    from mlflow.exceptions import MlflowException

    uri = "http://alice:hunter%3F2@127.0.0.1:9"
    with pytest.raises(TrackingError) as info, tracking.use_client(MlflowClient(uri)), \
            tracking.translated_errors():
        raise MlflowException(f"API request to {uri}/api failed; as alice:hunter?2")
    assert info.value.problem == (
        "MLflow (http://***@127.0.0.1:9) reported: API request to http://***@127.0.0.1:9/api "
        "failed; as alice:***")
    assert tracking.shown_uri() == tracking.redact(tracking.tracking_uri())
