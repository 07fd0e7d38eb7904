"""A batch bigger than memory: ``log-batch --engine spark`` of 40 million rows, then ``monitor``.

A sqlite store in a temporary folder holds a registered logistic-regression pipeline and its
baseline (``bench_store``, 20 features: 16 numeric, 4 categorical). The production batch is
written chunk by chunk as a parquet directory of 40,000,000 rows x 21 columns (the 20
features and the served ``prediction``; about 7 GB as raw values), never held whole in
memory. It is logged with ``driftctl log-batch --engine spark --prediction-col prediction``
(Spark ``local[2]``), then monitored with ``driftctl monitor --last 1``. Each command is
timed from start to exit, and the peak resident memory of its whole process tree (the
Python process, the JVM Spark runs in, and any Python workers) is sampled every 0.1 s.

Run
---
    python benchmarks/bench_spark_scale.py [--rows 40000000] [--chunk 1000000]

Needs ``pip install 'driftctl[spark]'`` and Java 17, about 5 GB of free disk, and about
four minutes on 2 cores after writing the data (two more). Spark's driver memory is
``--driver-memory`` (default 1g).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench_monitor import _frame
from bench_store import MODEL, driftctl, make_store
from machine import summary

FEATURES = 20


def write_batch(folder: Path, rows: int, chunk: int) -> None:
    """The production batch as a parquet directory, one file per ``chunk`` rows, each
    chunk's predictions made by the champion."""
    import mlflow

    from controller import tracking

    folder.mkdir()
    model = tracking.load_model(tracking.resolve_version(MODEL))
    for i, start in enumerate(range(0, rows, chunk)):
        frame = _frame(10_000 + i, min(chunk, rows - start), FEATURES, True)[0]
        frame["prediction"] = model.predict(frame)
        frame.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    mlflow.set_tracking_uri(None)


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_measured(args: list[str], env: dict, cwd: Path) -> tuple[float, int, str]:
    """Wall-clock seconds, peak tree RSS and stderr of a whole command."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(err.decode()[-3000:])
    return seconds, peak, err.decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows per parquet file")
    parser.add_argument("--driver-memory", default="1g")
    args = parser.parse_args(argv)

    print("driftctl log-batch --engine spark of a batch bigger than memory, then monitor")
    print(summary())
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"RAM      {total / 2**30:.1f} GiB; Spark local[2], driver memory {args.driver_memory}")
    with tempfile.TemporaryDirectory(prefix="bench_spark_scale_") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        env = make_store(folder, 200_000, FEATURES)
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.driver_memory} pyspark-shell"
        os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            write_batch(folder / "batch", args.rows, args.chunk)
        finally:
            os.chdir(cwd)
        size = sum(p.stat().st_size for p in (folder / "batch").iterdir())
        print(
            f"batch    {args.rows:,} rows x {FEATURES + 1} columns, "
            f"{args.rows * 21 * 8 / 2**30:.1f} GiB as raw 8-byte values, "
            f"{size / 2**30:.1f} GiB of parquet; store and batch "
            f"made in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        commands = {
            "log-batch --engine spark": driftctl(
                "log-batch", "--engine", "spark", "--model", MODEL,
                "--data", str(folder / "batch"), "--prediction-col", "prediction",
            ),
            "monitor --last 1": driftctl("monitor", "--model", MODEL, "--last", "1"),
        }
        print()
        print(f"{'command':<26} {'time':>8} {'rows/s':>12} {'peak RSS (tree)':>16}")
        for label, command in commands.items():
            seconds, peak, _ = run_measured(command, env, folder)
            print(
                f"{label:<26} {seconds:>6.1f} s {args.rows / seconds:>12,.0f} "
                f"{peak / 2**30:>12.2f} GiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
