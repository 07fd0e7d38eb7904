"""Whole-process time of ``driftctl monitor --last 1`` against the length of the history.

Two sqlite stores in a temporary folder each hold a registered logistic-regression pipeline
and its baseline (``bench_store``), then a history of earlier batches, each followed by the
run of its late labels: 10 batches in one store, 250 in the other. The cycle monitors the
last batch only, so its cost should not grow with the history: it reads the tags of the
batch and label runs (one search each), and the files of its own batch and of the labels
matched to it. Each ``monitor`` is timed as a whole process, from start to exit, with its
phases (``DRIFTCTL_TIMINGS``), beside the floor (a fresh Python that imports MLflow and
loads the champion).

Run
---
    python benchmarks/bench_history.py [--batches 10 250] [--rows 2000] [--repeat 3]

About six minutes at the defaults on 2 cores, most of it logging the 260 batches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_monitor import _frame
from bench_store import MODEL, driftctl, floor, make_store, timed, with_target
from machine import summary


def build_history(folder: Path, batches: int, rows: int, features: int) -> dict:
    """A store whose model has ``batches`` batches of ``rows`` rows, each with its labels."""
    import mlflow

    import controller
    from controller import tracking

    env = make_store(folder, 20_000, features)
    cwd = os.getcwd()
    os.chdir(folder)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        model = tracking.load_model(tracking.resolve_version(MODEL))
        for i in range(batches):
            frame = with_target(_frame(1000 + i, rows, features, i % 2 == 1)[0], i)
            frame.insert(0, "id", [f"{i}-{j}" for j in range(rows)])
            frame["prediction"] = model.predict(frame.drop(columns=["id", "y"]))
            controller.log_batch(MODEL, frame.drop(columns="y"), id_col="id")
            controller.log_labels(MODEL, frame[["id", "y"]], id_col="id", target="y")
    finally:
        mlflow.set_tracking_uri(None)
        os.chdir(cwd)
    return env


def time_monitor(folder: Path, env: dict, i: int) -> tuple[float, dict]:
    """Whole-process seconds of one ``monitor --last 1``, and its phases."""
    phases = folder / f"phases-{i}.json"
    seconds, proc = timed(
        driftctl("monitor", "--model", MODEL, "--last", "1"),
        {**env, "DRIFTCTL_TIMINGS": str(phases)},
        folder,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return seconds, json.loads(phases.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[10, 250])
    parser.add_argument("--rows", type=int, default=2000, help="rows per batch")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command")
    args = parser.parse_args(argv)

    print("driftctl monitor --last 1 against the length of the history (sqlite store)")
    print(summary())
    print(
        f"each batch {args.rows:,} rows x {args.features} features with served predictions "
        f"and ids, followed by a labels run for all its rows"
    )
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    stores, runs = {}, {n: [] for n in args.batches}
    with tempfile.TemporaryDirectory(prefix="bench_history_") as tmp:
        for n in args.batches:
            folder = Path(tmp) / f"h{n}"
            folder.mkdir()
            start = time.perf_counter()
            stores[n] = folder, build_history(folder, n, args.rows, args.features)
            print(f"  logged {n} batches and their labels in {time.perf_counter() - start:.0f} s")
        # Interleaved, so that a change in the machine's load falls on both alike.
        for i in range(args.repeat):
            for n, (folder, env) in stores.items():
                runs[n].append(time_monitor(folder, env, i))
        results = {}
        for n, (folder, env) in stores.items():
            ordered = sorted(runs[n], key=lambda r: r[0])
            results[n] = [s for s, _ in ordered], ordered[len(ordered) // 2][1], floor(env, folder)
    print()
    print(f"{'history':>8}  {'monitor (median)':>16}  {'runs':<22} {'floor':>6}")
    for n, (seconds, _, base) in results.items():
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{n:>8}  {statistics.median(seconds):>14.2f} s  {runs:<22} {base:>5.2f} s")
    print()
    names = list(next(iter(results.values()))[1])
    print("phases of the median run (s): " + ", ".join(f"{n} batches" for n in results))
    for name in names:
        print(f"  {name:<20}" + "".join(f"{r[1].get(name, 0.0):>8.2f}" for r in results.values()))
    small, large = min(results), max(results)
    ratio = statistics.median(results[large][0]) / statistics.median(results[small][0])
    print(f"\n{large} batches / {small} batches: {ratio:.2f}x (target: at most 1.3x)")


if __name__ == "__main__":
    main()
