"""A sqlite MLflow store with a registered model and its baseline, for the command benchmarks.

The data are bench_monitor's synthetic frames (80 numeric columns of mixed distributions,
20 categorical ones stored as pandas ``category``). The model is a logistic regression in a
scikit-learn pipeline (median imputation, one-hot categories) fitted on 20,000 reference
rows, registered as ``bench`` with alias ``champion``; its baseline is built from the whole
reference frame with ``controller.log_baseline``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_monitor import _frame

MODEL = "bench"


def with_target(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A binary label that depends on a few numeric and one categorical column."""
    rng = np.random.default_rng(seed)
    num = frame.select_dtypes("number").fillna(0.0)
    z = (num - num.mean()) / num.std()
    logit = z.iloc[:, 0] - 0.8 * z.iloc[:, 1] + 0.5 * z.iloc[:, 2]
    cat = frame.select_dtypes("category").iloc[:, 0].cat.codes.to_numpy()
    logit = logit + np.where(cat % 2 == 0, 0.7, -0.7)
    return frame.assign(y=(rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int))


def fit(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = frame.drop(columns="y")
    numeric = list(features.select_dtypes("number").columns)
    categorical = [c for c in features.columns if c not in numeric]
    model = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        (
                            "num",
                            make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                            numeric,
                        ),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    )
    return model.fit(features, frame["y"])


def make_store(
    folder: str | Path,
    rows: int,
    features: int = 100,
    seed: int = 0,
    reference: pd.DataFrame | None = None,
) -> dict:
    """Create ``folder/mlflow.db`` holding the registered model and its baseline (built from
    ``rows`` reference rows, or from ``reference`` when given); returns the environment that
    points commands at it."""
    import mlflow
    import sklearn
    from mlflow.tracking import MlflowClient

    import controller

    folder = Path(folder)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    cwd = os.getcwd()
    os.chdir(folder)  # the sqlite store's artifacts land in ./mlruns
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        if reference is None:
            reference, _ = _frame(seed, rows, features, False)
        reference = with_target(reference, seed)
        model = fit(reference.iloc[:20_000])
        mlflow.set_experiment("training")
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                skops_trusted_types=["numpy.dtype"],  # the one-hot encoder's dtype
            )
            controller.log_baseline(reference, model=model, target="y")
        MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
    finally:
        mlflow.set_tracking_uri(None)
        os.chdir(cwd)
    return env


def write_batch(path: str | Path, rows: int, features: int = 100, seed: int = 0) -> dict:
    """A production batch (bench_monitor's production frame) as parquet; what was planted."""
    frame, planted = _frame(seed, rows, features, True)
    frame.to_parquet(path, index=False)
    return planted


def timed(args: list[str], env: dict, cwd: str | Path) -> tuple[float, subprocess.CompletedProcess]:
    """Wall-clock time of a whole process, from its start to its exit."""
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def driftctl(*args: str) -> list[str]:
    """The ``driftctl`` command (as its console script runs it), in this Python."""
    return [sys.executable, "-m", "controller.cli", *args]


FLOOR = (
    "import mlflow, mlflow.pyfunc; mlflow.pyfunc.load_model('models:/{model}@champion')"
)


def floor(env: dict, cwd: str | Path) -> float:
    """A fresh Python that imports MLflow and loads the champion: no command can beat it."""
    seconds, proc = timed([sys.executable, "-c", FLOOR.format(model=MODEL)], env, cwd)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return seconds
