"""The same cycle against a real ``mlflow server`` on 127.0.0.1, through the console script."""

from __future__ import annotations

import json
import re
from collections import Counter

import mlflow
import mlflow.utils.rest_utils as rest_utils
import pytest
from conftest import make_frame, register, run_cli, runs_of
from mlflow.tracking import MlflowClient

from controller import tracking
from controller.loop.cycle import monitor

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_cycle_against_a_tracking_server(server_uri, tmp_path):
    register("srv-credit")
    calm = tmp_path / "calm.csv"
    make_frame(800, 31).drop(columns="y").to_csv(calm, index=False)
    rc, out, err = run_cli("log-batch", "--model", "srv-credit", "--data", str(calm),
                           "--tracking-uri", server_uri)
    assert rc == 0, err
    rc, out, err = run_cli("--tracking-uri", server_uri, "monitor", "--model", "srv-credit",
                           "--json")
    assert rc == 0, err
    assert json.loads(out)["verdict"] == "ok"

    shifted = tmp_path / "shifted.parquet"
    make_frame(800, 32, shift=1.2).drop(columns="y").to_parquet(shifted)
    assert run_cli("log-batch", "--model", "srv-credit", "--data", str(shifted))[0] == 0
    rc, out, err = run_cli("monitor", "--model", "srv-credit", "--json", "--exit-code")
    assert rc == 1, err
    summary = json.loads(out)
    assert "x1" in summary["drifted_features"]

    batches = runs_of("srv-credit", "batch")
    assert len(batches) == 2
    inputs = MlflowClient().get_run(batches[0].info.run_id).inputs.dataset_inputs
    assert [t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"] == [
        "production"]
    rc, _, err = run_cli("monitor", "--model", "missing-model")
    assert rc == 2 and "no registered model named 'missing-model'" in err


def test_a_cycle_costs_a_handful_of_requests(server_uri, monkeypatch):
    """Logging is batched: the request count does not grow with the number of metrics."""
    register("srv-count", seed=3)
    from controller.inputs.batches import log_batch

    log_batch("srv-count", make_frame(500, 4).drop(columns="y"))
    calls = []
    real = rest_utils.http_request

    def counting(*args, **kwargs):
        calls.append(kwargs.get("endpoint") or args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", counting)
    report = monitor("srv-count")
    monkeypatch.undo()
    n_metrics = len(report.metrics())
    assert n_metrics > 50
    log_batches = [c for c in calls if c.endswith("runs/log-batch")]
    assert len(log_batches) <= 3, calls  # cycle metrics, history metrics
    # Reading registry, baseline, batches, labels and earlier cycles and challengers, then
    # one run: a few dozen at most, not one per metric.
    assert len(calls) < 45, calls
    (run,) = runs_of("srv-count", "monitor")
    assert len(run.data.metrics) == n_metrics
    assert run.data.tags[tracking.MODEL] == "srv-count"


def test_the_retraining_loop_against_a_tracking_server(server_uri, tmp_path):
    """Drift triggers a challenger, a person approves it through the registry API the MLflow
    UI uses, two controllers promote it at once, and it is rolled back."""
    from conftest import aliases, changed_concept, ledger_of, run_together

    register("srv-loop", seed=5)
    for week in range(3):
        path = tmp_path / f"week{week}.parquet"
        changed_concept(600, 80 + week).to_parquet(path)
        rc, _, err = run_cli("log-batch", "--model", "srv-loop", "--data", str(path),
                             "--target", "y")
        assert rc == 0, err
    rc, out, err = run_cli("cycle", "--model", "srv-loop")
    assert rc == 0, err
    assert "roc_auc worse by" in out and "gate on roc_auc: PASSED" in out
    assert aliases("srv-loop") == {"champion": "1", "challenger": "2"}

    MlflowClient().set_model_version_tag("srv-loop", "2", "approval", "approved")
    run_together("cycle", "--model", "srv-loop")
    assert aliases("srv-loop") == {"champion": "2", "previous-champion": "1"}
    promotions = [v for k, v in ledger_of("srv-loop").items() if v.startswith("promote")]
    assert promotions == ["promote 1 -> 2: approved in the registry (tag approval=approved)"]

    rc, out, err = run_cli("rollback", "--model", "srv-loop")
    assert rc == 0, err
    assert aliases("srv-loop") == {"champion": "1"}
    assert MlflowClient().get_model_version("srv-loop", "2").tags["driftctl.status"] == (
        "rolled-back")


def test_requests_per_cycle_do_not_grow_with_the_models_on_the_server(server_uri):
    """The first cycle of a model costs as many requests with six models on the server as
    with two: runs are found by tag, never model by model (benchmarks/bench_many_models.py
    runs it at fifty)."""
    import requests

    from controller.inputs.batches import log_batch
    from controller.loop.cycle import cycle

    batch = make_frame(400, 7).drop(columns="y")
    real = requests.Session.request

    def cycle_requests(name: str) -> list[str]:
        calls = []

        def counting(session, method, url, *args, **kwargs):
            if url.startswith(server_uri):  # not MLflow's telemetry
                # Named by endpoint: the ids and artifact paths of two models differ.
                path = re.sub(r"[0-9a-f]{32}", "ID", url.removeprefix(server_uri))
                calls.append(f"{method} {path.split('/artifacts/')[0]}")
            return real(session, method, url, *args, **kwargs)

        log_batch(name, batch)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(requests.Session, "request", counting)
            cycle(name)
        return calls

    # Six models from one training run share its baseline: registering is not what is
    # measured, and fitting six would cost half a minute.
    source = MlflowClient().get_model_version("srv-many", register("srv-many", seed=9))
    names = [f"srv-many-{i}" for i in range(6)]

    def another(name: str) -> None:
        mv = mlflow.register_model(source.source, name)
        assert mv.run_id == source.run_id
        MlflowClient().set_registered_model_alias(name, "champion", mv.version)

    for name in names[:2]:
        another(name)
    with_two = cycle_requests(names[0])
    for name in names[2:]:
        another(name)
        log_batch(name, batch)
    with_six = cycle_requests(names[1])
    # The same data, so the same path through the cycle: the same requests, however many
    # models, experiments and runs the server holds.
    assert Counter(with_six) == Counter(with_two)
