"""What a user waits for: each ``driftctl`` command as a whole process, against the floor.

For each model (a tree ensemble, a linear model and an MLP, each in a one-hot pipeline) and
window size (small: 5,000 rows x 7 features; wide: 100,000 rows x 50 features), the script
registers the model in a fresh sqlite store and times, as separate processes:

- the floor: a fresh Python that imports MLflow and loads the champion with
  ``mlflow.pyfunc.load_model`` (no command can be cheaper);
- ``driftctl baseline`` (on a training set of 10x the window, at most 100,000 rows),
  ``log-batch``, ``log-labels`` and ``monitor --last 1`` (the floor and ``monitor`` in
  turns, three times each, medians);

and prints each against the floor, then ``monitor``'s phases (``DRIFTCTL_TIMINGS``; the
rest of a command's time is the interpreter's start and exit).

    python benchmarks/bench_cycle.py [--models tree linear mlp] [--sizes small wide]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import summary

SIZES = {"small": (5_000, 4, 3), "wide": (100_000, 40, 10)}  # rows, numeric, categorical
# MLflow saves scikit-learn models with skops, which loads only the types it is told to trust.
TRUSTED = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
]


def make_data(n: int, n_num: int, n_cat: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Labelled rows; ``shift`` moves the first numeric feature and changes the concept."""
    rng = np.random.default_rng(seed)
    cols = {f"num{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(n_num)}
    for i in range(n_cat):
        cols[f"cat{i}"] = rng.choice(list("abcdefgh"[: 3 + i % 6]), size=n)
    frame = pd.DataFrame(cols)
    weights = np.linspace(1.5, 0.1, n_num)
    logit = frame[[f"num{i}" for i in range(n_num)]].to_numpy() @ weights / np.sqrt(n_num / 4)
    logit += np.where(frame["cat0"] == "a", 1.0, -0.3) - shift * frame["num1"].to_numpy()
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def make_model(kind: str, frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [c for c in frame.columns if c.startswith("cat")]
    nums = [c for c in frame.columns if c.startswith("num")]
    estimator = {
        "tree": HistGradientBoostingClassifier(random_state=0),
        "linear": LogisticRegression(max_iter=1000),
        "mlp": MLPClassifier((32,), max_iter=200, early_stopping=True, random_state=0),
    }[kind]
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), cats)]
        + ([] if kind == "tree" else [("num", StandardScaler(), nums)]),
        remainder="passthrough",
    )
    train = frame.iloc[:20_000]
    return Pipeline([("encode", encode), ("model", estimator)]).fit(
        train[cats + nums], train["y"]
    )


def register(name: str, model) -> None:
    import mlflow
    import sklearn
    from mlflow import MlflowClient

    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            skops_trusted_types=TRUSTED,
        )
    MlflowClient().set_registered_model_alias(name, "champion", info.registered_model_version)


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def bench(kind: str, size: str, root: Path) -> dict:
    import mlflow

    rows, n_num, n_cat = SIZES[size]
    work = root / f"{kind}-{size}"
    work.mkdir()
    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    train = make_data(min(10 * rows, 100_000), n_num, n_cat, seed=0)
    name = f"{kind}-{size}"
    register(name, make_model(kind, train))
    train.to_parquet(work / "train.parquet")
    window = make_data(rows, n_num, n_cat, seed=1, shift=0.5)
    window.insert(0, "id", [f"r{i}" for i in range(rows)])
    window.drop(columns="y").to_parquet(work / "window.parquet")
    window[["id", "y"]].to_parquet(work / "labels.parquet")

    exe = str(Path(sys.executable).with_name("driftctl"))
    floor_code = f"import mlflow; mlflow.pyfunc.load_model('models:/{name}@champion')"
    timings = work / "timings.json"
    out = {}
    out["baseline"] = timed(
        [exe, "baseline", "--model", name, "--data", "train.parquet", "--target", "y"], work, env
    )
    out["log-batch"] = timed(
        [exe, "log-batch", "--model", name, "--data", "window.parquet", "--id-col", "id"],
        work,
        env,
    )
    out["log-labels"] = timed(
        [exe, "log-labels", "--model", name, "--data", "labels.parquet", "--id-col", "id",
         "--target", "y"],
        work,
        env,
    )
    # The floor and monitor take turns, three times each, and count by their medians: the
    # floor is every figure's yardstick, and a busy moment must not skew one side.
    floors, monitors = [], []
    for _ in range(3):
        floors.append(timed([sys.executable, "-c", floor_code], work, env))
        monitors.append(
            timed(
                [exe, "monitor", "--model", name, "--last", "1"],
                work,
                {**env, "DRIFTCTL_TIMINGS": str(timings)},
            )
        )
    out["floor"], out["monitor"] = float(np.median(floors)), float(np.median(monitors))
    out["phases"] = json.loads(timings.read_text())
    mlflow.set_tracking_uri(None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tree", "linear", "mlp"])
    parser.add_argument("--sizes", nargs="+", default=["small", "wide"], choices=list(SIZES))
    args = parser.parse_args()
    print(summary())
    root = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    os.chdir(root)
    try:
        for size in args.sizes:
            rows, n_num, n_cat = SIZES[size]
            print(f"\n{size}: window {rows:,} rows x {n_num + n_cat} features")
            print(f"{'model':<7} {'floor':>6} " + " ".join(
                f"{c:>17}" for c in ("baseline", "log-batch", "log-labels", "monitor")
            ))
            phases = {}
            for kind in args.models:
                r = bench(kind, size, root)
                cells = " ".join(
                    f"{r[c]:>7.1f} s ({r[c] / r['floor']:.2f}x)"
                    for c in ("baseline", "log-batch", "log-labels", "monitor")
                )
                print(f"{kind:<7} {r['floor']:>4.1f} s {cells}", flush=True)
                phases[kind] = {**r["phases"], "total": r["monitor"]}
            names = list(dict.fromkeys(p for ph in phases.values() for p in ph))
            print(f"monitor phases (s): {'':<8}" + " ".join(f"{k:>7}" for k in phases))
            for p in names:
                print(f"  {p:<26}" + " ".join(f"{ph.get(p, 0.0):>7.2f}" for ph in phases.values()))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
