"""Whole-process time of ``driftctl log-batch`` on wide batches, against the floor.

A sqlite store in a temporary folder holds a registered logistic-regression pipeline and its
baseline (``bench_store``). For each batch size (by default 200,000 and 1,000,000 rows x 100
features, written to parquet first) it times the whole ``driftctl log-batch`` process, from
start to exit, with the champion predicting. The floor is a fresh Python that imports MLflow
and loads the champion with ``mlflow.pyfunc.load_model``: what any command that scores the
batch pays before touching it.

Run
---
    python benchmarks/bench_log_batch.py [--rows 200000 1000000] [--repeat R]

About five minutes at the default sizes on 2 cores; each ``log-batch`` of 1,000,000 rows
peaks near 3 GB of RAM.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_store import MODEL, driftctl, floor, make_store, timed, write_batch
from machine import summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--reference-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timed command")
    args = parser.parse_args(argv)

    print("driftctl log-batch benchmark: whole-process time on a sqlite store")
    print(summary())
    with tempfile.TemporaryDirectory(prefix="bench_log_batch_") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        env = make_store(folder, args.reference_rows, args.features)
        print(
            f"store with model {MODEL!r} and a baseline of {args.reference_rows:,} rows made in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
        floors = [floor(env, folder) for _ in range(args.repeat)]
        print(f"floor (python -c 'import mlflow; load the champion'): {min(floors):.1f} s")
        for rows in args.rows:
            path = folder / f"batch_{rows}.parquet"
            write_batch(path, rows, args.features)
            times = []
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                seconds, proc = timed(
                    driftctl("log-batch", "--model", MODEL, "--data", str(path)), env, folder
                )
                if proc.returncode:
                    raise RuntimeError(proc.stderr)
                times.append(seconds)
                print(
                    f"  log-batch {rows:>9,} x {args.features}: {seconds:7.1f} s "
                    f"(1-min load average {load:.1f} before)",
                    flush=True,
                )
            print(
                f"log-batch {rows:,} x {args.features}: best {min(times):.1f} s, "
                f"{min(times) - min(floors):.1f} s above the floor"
            )
            path.unlink()
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"1-min load average {load:.1f}: other work competed for the CPU; times are noisy")


if __name__ == "__main__":
    main()
