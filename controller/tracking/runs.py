"""Runs and what is logged in them: the controller's experiment, runs that survive only
complete, metrics, parameters and small text artifacts, and finding runs again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

import mlflow
from mlflow.entities import Metric, Param
from mlflow.environment_variables import MLFLOW_RUN_ID
from mlflow.exceptions import MlflowException

from controller._failpoints import failpoint
from controller.tracking.connection import client
from controller.tracking.deadline import lease_until
from controller.tracking.tags import (
    EXPERIMENT,
    EXPERIMENT_KIND,
    KIND,
    MACHINE_LEARNING,
    MODEL,
    PARENT_RUN,
    TAG,
)

SINGLETON = TAG + "singleton"  # on a long-lived run (history, ledger): never "complete"
SWEPT = TAG + "swept"  # on a run left RUNNING that a later cycle marked failed: why
LEASE = TAG + "lease_until"  # on a run a command started: when its watchdog ends it (UTC)

_BATCH = 1000  # MLflow's limit of metrics per log_batch request
_listed: ContextVar[list | None] = ContextVar("driftctl_experiments", default=None)


def experiment_id(model: str) -> str:
    """The controller's experiment for ``model``, created on first use.

    It declares its kind (machine learning) for the MLflow UI; one created by an earlier
    release gets the tag on its next use, read from the experiment already fetched. A kind
    someone chose in the UI stays.
    """
    name = EXPERIMENT.format(model=model)
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            created = c.create_experiment(
                name, tags={MODEL: model, EXPERIMENT_KIND: MACHINE_LEARNING}
            )
            _join(created)
            return created
        except MlflowException:  # created meanwhile by a concurrent controller
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
        _join(exp.experiment_id)
    if EXPERIMENT_KIND not in exp.tags:
        # Only a label for the UI: a user allowed to log runs but not to edit the
        # experiment (basic-auth's USE) goes on without it.
        with contextlib.suppress(MlflowException):
            c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, MACHINE_LEARNING)
    return exp.experiment_id


def set_experiment(name: str) -> None:
    """Make ``name`` the experiment of runs started from here on (created if need be)."""
    mlflow.set_experiment(name)


def start_run(run_name: str):
    """Start a run in the current experiment, the active run until the block ends."""
    return mlflow.start_run(run_name=run_name)


def active_run_id() -> str | None:
    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


@contextlib.contextmanager
def atomic_run(
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    run_id: str | None = None,
    parent: Callable[[], str] | None = None,
) -> Iterator:
    """A run that survives only complete: on any error it is marked failed and deleted.

    Readers select runs with status FINISHED, so a run killed half-way is never read.
    ``run_id`` continues a finished run (one ``mlflow.projects.run`` made) through the
    client, not as the active run; readers then rely on a marker tag set last.
    ``parent()`` gives the run (in ``experiment``) a new run is grouped under in the UI.
    A caller's run wins: inside one (a training script, a notebook) ours nests under it,
    and under ``mlflow run`` ours is the project's run, left where the project put it.
    """
    if run_id:
        for key, value in tags.items():
            client().set_tag(run_id, key, value)
        run = client().get_run(run_id)
    else:
        nested = mlflow.active_run() is not None
        if parent is not None and not nested and not MLFLOW_RUN_ID.get():
            tags = {**tags, PARENT_RUN: parent()}
        if (until := lease_until()) is not None:
            tags = {**tags, LEASE: utc(until)}
        run = mlflow.start_run(
            experiment_id=experiment, run_name=run_name, tags=tags, nested=nested
        )
    failpoint("started-" + tags.get(KIND, "run"))
    try:
        yield run
    except BaseException:
        # Best effort: with the server gone, the error that stopped the run is the one to
        # report, and the next cycle's ``sweep`` fails the run left RUNNING.
        with contextlib.suppress(MlflowException):
            if not run_id:
                mlflow.end_run("FAILED")
            client().delete_run(run.info.run_id)
        raise
    if not run_id:
        mlflow.end_run()


def log_metrics(
    run_id: str, metrics: dict[str, float], step: int = 0, timestamp: int | None = None
) -> None:
    """Log many metrics in as few requests as MLflow allows."""
    ts = timestamp or int(time.time() * 1000)
    items = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
    c = client()
    for i in range(0, len(items), _BATCH):
        c.log_batch(run_id, metrics=items[i : i + _BATCH])


def log_params(run_id: str, params: dict[str, object]) -> None:
    client().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_dict(run_id: str, data: dict, path: str) -> None:
    """Log ``data`` as a JSON (or YAML, by the extension of ``path``) artifact."""
    failpoint("artifact-upload")
    client().log_dict(run_id, data, path)


def log_text(run_id: str, text: str, path: str) -> None:
    failpoint("artifact-upload")
    client().log_text(run_id, text, path)


def get_run(run_id: str):
    return client().get_run(run_id)


def set_run_tag(run_id: str, key: str, value: str) -> None:
    client().set_tag(run_id, key, value)


def experiment_run_ids(name: str) -> set[str]:
    """The runs of the experiment called ``name`` (none when there is no such experiment)."""
    exp = client().get_experiment_by_name(name)
    if exp is None:
        return set()
    return {r.info.run_id for r in client().search_runs([exp.experiment_id], max_results=5000)}


def delete_run(run_id: str) -> None:
    client().delete_run(run_id)


def metric_history(run_id: str, key: str) -> list:
    """Every value logged for ``key`` in ``run_id`` (with its timestamp and step)."""
    return client().get_metric_history(run_id, key)


def finished_runs(model: str, kind: str) -> list:
    """Complete runs of one kind (batch, labels, monitor, ...) for ``model``, oldest first.

    Runs are found by their tags in every experiment: a command run by ``mlflow run``
    logs into the project's run, in the experiment the project was run in.
    """
    return sorted(
        model_runs(model, f"tags.`{KIND}` = '{kind}' and attributes.status = 'FINISHED'"),
        key=lambda r: r.info.start_time,
    )


def latest_runs(model: str, kind: str, n: int, where: str = "") -> list:
    """The ``n`` newest complete runs of ``kind`` for ``model`` matching ``where``, newest
    first. A cycle decides on its few latest predecessors; finding all of them would load
    every metric of every earlier cycle (one per feature and statistic)."""
    where = f"tags.`{KIND}` = '{kind}' and attributes.status = 'FINISHED'" + (
        f" and {where}" if where else ""
    )
    return model_runs(model, where, limit=n)


def model_runs(model: str, where: str = "", limit: int | None = None) -> list:
    """Runs tagged with ``model`` in any active experiment, matching ``where``; with
    ``limit``, only the newest ``limit`` of them, newest first."""
    experiments = _experiments()
    runs, token = [], None
    where = f"tags.`{MODEL}` = '{model}'" + (f" and {where}" if where else "")
    order = ["attributes.start_time DESC"] if limit else None
    while True:
        page = client().search_runs(
            experiments,
            where,
            max_results=min(limit or 1000, 1000),
            order_by=order,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token or (limit and len(runs) >= limit):
            return runs[:limit] if limit else runs


def _experiments() -> list[str]:
    """The active experiments' ids: listed once per ``listing_once`` block."""
    if held := _listed.get():
        return held[0]
    experiments, token = [], None
    while True:
        page = client().search_experiments(max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    if held is not None:
        held.append(experiments)
    return experiments


def _join(experiment: str) -> None:
    """An experiment driftctl made active joins the ones listed."""
    if (held := _listed.get()) and experiment not in held[0]:
        held[0].append(experiment)


@contextlib.contextmanager
def listing_once() -> Iterator[None]:
    """Within the block (a cycle), runs are found in the experiments listed on first need,
    not listed again for each search. An experiment driftctl creates meanwhile joins them;
    one someone else creates is seen by the next block."""
    token = _listed.set([])
    try:
        yield
    finally:
        _listed.reset(token)


def singleton_run(experiment: str, model: str, kind: str, run_name: str) -> str:
    """The one long-lived run of ``kind`` for ``model`` (the drift history, the ledger).

    Created on first use. Should two controllers create it at the same moment, both go on
    with the oldest and the other is deleted.
    """
    where = f"tags.`{KIND}` = '{kind}' and tags.`{MODEL}` = '{model}'"
    order = ["attributes.start_time ASC", "attributes.run_id ASC"]
    runs = client().search_runs([experiment], where, order_by=order, max_results=1)
    if runs:
        return runs[0].info.run_id
    tags = {KIND: kind, MODEL: model, SINGLETON: "true"}
    ours = client().create_run(experiment, run_name=run_name, tags=tags)
    client().set_terminated(ours.info.run_id)
    first = client().search_runs([experiment], where, order_by=order, max_results=1)[0]
    if first.info.run_id != ours.info.run_id:
        client().delete_run(ours.info.run_id)
    return first.info.run_id


def write_param_once(run_id: str, key: str, value: str) -> str:
    """Log ``key`` = ``value`` unless ``run_id`` holds ``key`` already; the value that holds.

    MLflow refuses to change a parameter: of two writers racing for a key, one writes and
    the other reads what was written.
    """
    try:
        client().log_param(run_id, key, value)
        return value
    except MlflowException as exc:
        held = client().get_run(run_id).data.params.get(key)
        if exc.error_code != "INVALID_PARAMETER_VALUE" or held is None:
            raise
        return held


def sweep(model: str, older_than: float) -> list[str]:
    """End the runs of ``model`` that driftctl left RUNNING with no process behind them;
    the ids of those it ended.

    No driftctl command outlives its deadline: a run whose command's deadline passed
    (its tag ``driftctl.lease_until``; without it, started more than ``older_than`` seconds
    ago) was left by a command that was killed, or lost the server before it could end the
    run. It gets FAILED, and the tag ``driftctl.swept`` says why (a long-lived run, the
    drift history or the ledger, created twice by a retry, gets FINISHED: it is read
    whatever its status). The run of ``mlflow run`` and the active run are the caller's.
    """
    now = time.time()
    mine = {MLFLOW_RUN_ID.get(), active_run_id()}
    ended = []
    for run in model_runs(model, "attributes.status = 'RUNNING'"):
        tags, run_id = run.data.tags, run.info.run_id
        if KIND not in tags or "mlflow.project.entryPoint" in tags or run_id in mine:
            continue
        lease = tags.get(LEASE, "")
        if _parsed(lease) is None:  # none, or not one driftctl wrote: the oldest rule
            lease = utc(run.info.start_time / 1000 + older_than)
        if not lapsed(lease, now):
            continue  # its command may still be at work
        client().set_tag(
            run_id,
            SWEPT,
            f"left RUNNING by a driftctl command that was killed or lost the tracking "
            f"server (its deadline passed at {lease}); marked by the cycle of {utc(now)}",
        )
        client().set_terminated(run_id, "FINISHED" if tags.get(SINGLETON) == "true" else "FAILED")
        ended.append(run_id)
    return ended


def lease(horizon: float) -> str:
    """When this command ends at the latest: its watchdog's deadline, without one (a
    library call) ``horizon`` seconds from now; as written in tags and parameters."""
    return utc(lease_until() or time.time() + horizon)


def lapsed(lease: str, now: float | None = None) -> bool:
    """Whether the command that holds ``lease`` has ended by ``now`` whatever happened
    (a lease that is not a time has lapsed: driftctl writes none such)."""
    until = _parsed(lease)
    return until is None or until <= (now or time.time())


def _parsed(lease: str) -> float | None:
    try:
        return datetime.fromisoformat(lease[:40]).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat()
