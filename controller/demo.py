"""A small end-to-end scenario on the local tracking store: train, register, watch drift."""

from __future__ import annotations

import contextlib
import warnings

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from controller import tracking
from controller.batches import log_batch, log_labels
from controller.cycle import monitor
from controller.scenario import FEATURES, TARGET, credit_data

MODEL = "credit-demo"
SHIFT_WEEK = 4


def _say(text: str) -> None:
    print(text, flush=True)


def _clear_previous(client) -> None:
    """Start over: drop the model and the runs a previous demo left."""
    with contextlib.suppress(MlflowException):
        client.delete_registered_model(MODEL)
    exp = client.get_experiment_by_name(tracking.EXPERIMENT.format(model=MODEL))
    if exp is not None:
        for run in client.search_runs([exp.experiment_id], max_results=5000):
            client.delete_run(run.info.run_id)


def train_champion(rows: int = 5000, seed: int = 0) -> str:
    """Train, log and register the first champion with its baseline; returns its version."""
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = credit_data(rows, seed=seed)
    valid = credit_data(max(rows // 2, 500), seed=seed + 1)
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("zip", OneHotEncoder(handle_unknown="ignore"), ["zipcode"])],
                    remainder="passthrough",
                ),
            ),
            (
                "forest",
                RandomForestClassifier(n_estimators=100, max_depth=10, random_state=seed, n_jobs=1),
            ),
        ]
    ).fit(train[FEATURES], train[TARGET])
    mlflow.set_experiment(f"{MODEL}-training")
    with warnings.catch_warnings():
        # The applicants' ages and counts are integers and never missing: MLflow's hint
        # about integer columns does not apply.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(train[FEATURES], model.predict(train[FEATURES]))
    with mlflow.start_run(run_name="train champion"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL,
            signature=signature,
            # MLflow's skops format trusts only the types named here; these trees are ours.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # skips a slow inference
        )
        tracking.log_baseline(valid, model=model, target=TARGET)
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version)
    return version


def run_demo(weeks: int = 6, rows: int = 2000) -> None:
    client = mlflow.MlflowClient()
    _say(f"driftctl demo on {mlflow.get_tracking_uri()}")
    _clear_previous(client)
    version = train_champion()
    _say(f"trained and registered {MODEL} version {version} (alias champion) with its baseline")
    start = pd.Timestamp("2026-01-05", tz="UTC")
    for week in range(1, weeks + 1):
        shifted = week >= SHIFT_WEEK
        batch = credit_data(
            rows,
            seed=100 + week,
            income_shift=0.75 if shifted else 1.0,
            loan_shift=1.4 if shifted else 1.0,
        )
        batch.insert(0, "application_id", [f"w{week}-{i}" for i in range(rows)])
        batch["decided_at"] = (
            start + pd.Timedelta(weeks=week - 1) + pd.to_timedelta(range(rows), unit="min")
        )
        log_batch(
            MODEL, batch.drop(columns=TARGET), id_col="application_id", timestamp_col="decided_at"
        )
        # Loan outcomes arrive after the decisions, as a separate labels file.
        log_labels(MODEL, batch[["application_id", TARGET]], id_col="application_id", target=TARGET)
        report = monitor(MODEL, last=1)
        drifted = ", ".join(report.drifted) or "none"
        perf = report.performance.get("accuracy")
        _say(
            f"week {week}: {report.verdict.upper():<7} drifted features: {drifted}"
            + (f"; accuracy {perf:.3f}" if perf is not None else "")
            + ("; retrain triggered" if report.retrain.triggered else "")
        )
    _say(
        f"\nSee it in the MLflow UI: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}"
        f"\nthen open the experiment {tracking.EXPERIMENT.format(model=MODEL)!r}: each week is "
        "a monitor run nested under 'drift history', whose charts follow each feature's "
        "drift over the weeks."
    )
