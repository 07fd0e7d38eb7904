"""Training baselines in MLflow: logged as artifacts of a run, linked from the model
versions they describe, and read back."""

from __future__ import annotations

import tempfile

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from controller._errors import DriftctlError, NotFoundError
from controller.profiles import storage
from controller.profiles.baseline import Baseline
from controller.tracking.connection import client
from controller.tracking.runs import active_run_id
from controller.tracking.tags import BASELINE, BASELINE_PATH, BASELINE_RUN, MODEL


def save_baseline(baseline: Baseline, run_id: str) -> None:
    """Log the baseline's files to ``run_id``; the marker tag goes last, so it is atomic."""
    with tempfile.TemporaryDirectory() as tmp:
        storage.save(baseline, tmp)
        client().log_artifacts(run_id, tmp, BASELINE_PATH)
    client().set_tag(run_id, BASELINE, BASELINE_PATH)


def link_baseline(mv: ModelVersion, run_id: str) -> None:
    """Tag the model version with the run that holds its baseline (shown in the UI), unless
    the tag says so already."""
    if mv.tags.get(BASELINE_RUN) != run_id:
        client().set_model_version_tag(mv.name, mv.version, BASELINE_RUN, run_id)


def load_baseline(mv: ModelVersion) -> tuple[Baseline, str]:
    """The baseline of a model version and the run holding it.

    Only reads: a version registered after its baseline was logged is found through its
    run, and a command that writes links it (``link_baseline``).
    """
    c = client()
    for run_id in filter(None, (mv.tags.get(BASELINE_RUN), mv.run_id)):
        try:
            run = c.get_run(run_id)
        except MlflowException:
            continue
        if run.info.lifecycle_stage == "active" and BASELINE in run.data.tags:
            if run_id != mv.run_id:
                _check_owner(c, mv, run)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    local = c.download_artifacts(run_id, run.data.tags[BASELINE], tmp)
                except (MlflowException, OSError) as exc:
                    raise NotFoundError(
                        f"the baseline of model {mv.name!r} version {mv.version} (run "
                        f"{run_id}) has lost its files: {str(exc)[:300]}",
                        f"log it again: driftctl baseline --model {mv.name} --version "
                        f"{mv.version} --data TRAINING_DATA [--target LABEL]",
                    ) from exc
                return storage.load(local), run_id
    raise NotFoundError(
        f"model {mv.name!r} version {mv.version} has no driftctl baseline",
        f"log one: driftctl baseline --model {mv.name} --version {mv.version} "
        "--data TRAINING_DATA [--target LABEL], or call controller.log_baseline(...) "
        "in the training run",
    )


def _check_owner(c, mv: ModelVersion, run) -> None:
    """A baseline linked by tag must be one of this model's: a baseline run names its model,
    a training run is known by the versions registered from it."""
    owner = run.data.tags.get(MODEL)
    if owner is None:
        names = {v.name for v in c.search_model_versions(f"run_id = '{run.info.run_id}'")}
        owner = None if not names or mv.name in names else sorted(names)[0]
    if owner is not None and owner != mv.name:
        raise NotFoundError(
            f"model {mv.name!r} version {mv.version} is linked (tag {BASELINE_RUN}) to the "
            f"baseline of model {owner!r} (run {run.info.run_id})",
            f"log this version's own baseline: driftctl baseline --model {mv.name} --version "
            f"{mv.version} --data TRAINING_DATA [--target LABEL]",
        )


def log_baseline(
    data: pd.DataFrame,
    *,
    model=None,
    target: str | None = None,
    predictions=None,
    run_id: str | None = None,
    **options,
) -> Baseline:
    """Record a training baseline in the active MLflow run (or ``run_id``).

    Call it in the run that logs the model: ``monitor`` finds the baseline from any
    registered version of that model. Versions already registered from the run are tagged
    with ``driftctl.baseline_run_id`` at once. ``options`` go to ``build_baseline``.
    """
    from controller.profiles.build import build_baseline

    if run_id is None:
        run_id = active_run_id()
        if run_id is None:
            raise DriftctlError(
                "log_baseline needs an MLflow run to log into",
                "call it inside `with mlflow.start_run():` (the training run), or pass run_id",
            )
    baseline = build_baseline(data, model=model, target=target, predictions=predictions, **options)
    save_baseline(baseline, run_id)
    for mv in client().search_model_versions(f"run_id = '{run_id}'"):
        link_baseline(mv, run_id)
    return baseline
