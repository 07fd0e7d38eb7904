"""Many models, two controllers: ``driftctl cycle`` for N models on one real ``mlflow server``.

The script starts ``mlflow server`` on a free port of 127.0.0.1 with a sqlite store in a
temporary folder, registers N small models (a one-hot logistic regression each, with its
baseline), and then, cycle after cycle, logs one labelled batch per model and runs two
controllers at once. Controllers are separate processes that run the ``driftctl cycle``
command (``controller.cli.main``, in-process so that its start-up is paid once per round):

- first the first ``--small`` models alone, with one controller (the server holds
  ``--small`` models): cycle 1 at a small scale;
- then all N: each controller takes the models of its shard (a CRC-32 of the name, modulo
  2), and both take an overlapping set (every fifth model), in the same order, so they
  race on it.

One model in ten sees its concept change from the first batch on, under
``promotion = "auto"``: its cycles retrain, and the racing controllers promote.

Requests are counted in each controller around each cycle, on ``requests.Session``, which
every MLflow client call goes through (tracking, registry and artifact transfers alike);
the server's access log counts them again, in total. It prints requests per cycle by cycle
number and by number of models on the server, wall times, each model's ledger checked for
a decision written twice, and every error.

    python benchmarks/bench_many_models.py [--models 50] [--cycles 3] [--small 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

from _server import start
from machine import summary

POLICY = '[retrain]\npromotion = "auto"\n'
ROWS = 600  # rows in each batch


def name_of(i: int) -> str:
    return f"many-{i:03d}"


def drifting(name: str) -> bool:
    return int(name.rsplit("-", 1)[1]) % 10 == 9


def shard(name: str) -> int:
    """The controller that owns ``name``: a stable hash, so every controller agrees."""
    return zlib.crc32(name.encode()) % 2


def overlapping(name: str) -> bool:
    """Models both controllers cycle: the drifting ones among them, so they race to retrain
    and promote."""
    return int(name.rsplit("-", 1)[1]) % 5 == 4


# --- data and models ------------------------------------------------------------------------

def make_frame(n: int, seed: int, *, changed: bool = False):
    """Labelled rows: two numeric features, a category and a flag; ``changed``: the label
    follows x2 instead of x1 (a concept change no input test sees)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.lognormal(0.0, 0.5, n)
    segment = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    flag = rng.random(n) < 0.3
    if changed:
        y = (x2 - np.median(x2) + rng.normal(0, 0.2, n) > 0).astype(int)
    else:
        logit = 1.5 * x1 - 0.8 * (x2 - 1) + np.where(segment == "a", 0.7, -0.2) + 0.5 * flag
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "segment": segment, "flag": flag, "y": y})


def fit(frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline([
        ("encode", ColumnTransformer(
            [("seg", OneHotEncoder(handle_unknown="ignore"), ["segment"])],
            remainder="passthrough")),
        ("clf", LogisticRegression(max_iter=500)),
    ]).fit(frame.drop(columns="y"), frame["y"])


# --- worker roles (each a process of its own) -----------------------------------------------

class Counting:
    """Counts the HTTP requests this process sends to the tracking server, by method and
    path (not MLflow's telemetry, which goes elsewhere)."""

    def __init__(self):
        import requests

        self.calls: list[str] = []
        server = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/"
        real = requests.Session.request

        def request(session, method, url, *args, **kwargs):
            if url.startswith(server):
                self.calls.append(f"{method} {url.removeprefix(server)}")
            return real(session, method, url, *args, **kwargs)

        requests.Session.request = request


def setup(models: list[str]) -> list[dict]:
    """Register each model with alias champion and its baseline."""
    import mlflow
    import sklearn
    from mlflow.tracking import MlflowClient

    import controller as driftctl

    model = fit(make_frame(3000, 0))
    baseline = make_frame(2000, 1)
    mlflow.set_experiment("training")
    out = []
    for name in models:
        start = time.perf_counter()
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
            driftctl.log_baseline(baseline, model=model, target="y")
        MlflowClient().set_registered_model_alias(
            name, "champion", str(info.registered_model_version))
        out.append({"model": name, "seconds": time.perf_counter() - start})
    return out


def feed(models: list[str], cycle: int) -> list[dict]:
    """Log this cycle's batch, labels inline, for each model."""
    import controller as driftctl

    out = []
    for name in models:
        start = time.perf_counter()
        seed = 1000 * cycle + int(name.rsplit("-", 1)[1])
        driftctl.log_batch(name, make_frame(ROWS, seed, changed=drifting(name)), target="y")
        out.append({"model": name, "seconds": time.perf_counter() - start})
    return out


def run_cycles(models: list[str], cycle: int, controller: str, policy: str) -> list[dict]:
    """``driftctl cycle`` for each model, with its requests counted."""
    from controller.cli import main

    counting = Counting()
    out = []
    for name in models:
        counting.calls.clear()
        said, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(err):
            rc = main(["cycle", "--model", name, "--policy", policy])
        out.append({
            "model": name, "cycle": cycle, "controller": controller, "rc": rc,
            "error": err.getvalue().strip()[-2000:] if rc else "",
            "seconds": time.perf_counter() - start,
            "retrained": "gate on " in said.getvalue(),
            "stood_down": "another cycle is monitoring this window" in said.getvalue(),
            "requests": len(counting.calls), "calls": Counter(counting.calls),
        })
    return out


def worker(args) -> None:
    if args.role == "setup":
        result = setup(args.names)
    elif args.role == "feed":
        result = feed(args.names, args.cycle)
    else:
        result = run_cycles(args.names, args.cycle, args.controller, args.policy)
    Path(args.out).write_text(json.dumps(result))


# --- the driver -----------------------------------------------------------------------------

# uvicorn's access line: 127.0.0.1:PORT - "GET /path HTTP/1.1" 200
ACCESS = re.compile(rb'"(GET|POST|PUT|PATCH|DELETE|HEAD) /\S* HTTP/[\d.]+" \d{3}')


def served(log_path: Path) -> int:
    """Requests in the server's access log so far."""
    return len(ACCESS.findall(log_path.read_bytes()))


class Driver:
    def __init__(self, root: Path, uri: str):
        self.root, self.uri, self.n = root, uri, 0
        self.policy = root / "policy.toml"
        self.policy.write_text(POLICY)

    def spawn(self, role: str, names: list[str], cycle: int = 0, controller: str = ""):
        self.n += 1
        out = self.root / f"out-{self.n}.json"
        cmd = [sys.executable, __file__, "--worker", role, "--cycle", str(cycle),
               "--controller", controller, "--policy", str(self.policy), "--out", str(out),
               *names]
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.uri,
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        # Each worker's records go to its file; MLflow's links to each run are left out.
        proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        return proc, out

    def together(self, jobs: list[tuple]) -> tuple[list[dict], float]:
        """Run the workers of ``jobs`` at once; their records and the wall time."""
        start = time.perf_counter()
        procs = [self.spawn(*job) for job in jobs if job[1]]
        records = []
        for proc, out in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"a worker failed:\n{err[-4000:]}")
            records += json.loads(out.read_text())
        return records, time.perf_counter() - start


def halves(names: list[str]) -> list[list[str]]:
    return [names[0::2], names[1::2]]


def race_lists(names: list[str]) -> list[list[str]]:
    """Each controller's models: the shared ones first, in the same order, then its shard."""
    shared = [n for n in names if overlapping(n)]
    return [shared + [n for n in names if not overlapping(n) and shard(n) == c] for c in (0, 1)]


def spread(values: list[int]) -> str:
    if not values:
        return "-"
    return (f"median {statistics.median(values):5.1f}  min {min(values):3d}  "
            f"max {max(values):3d}  (n={len(values)})")


def ledger_check(names: list[str]) -> tuple[list[str], int, int]:
    """Problems in the models' ledgers (a decision written twice, a champion alias that is
    not the ledger's last word), and the monitor runs two racing controllers both made for
    one window (the window's claim should leave one)."""
    from mlflow.tracking import MlflowClient

    from controller import tracking
    from controller.loop import registry

    c, problems, twice, promotions = MlflowClient(), [], 0, 0
    for name in names:
        entries = [(k, v) for k, v in c.get_run(registry.ledger(name)).data.params.items()
                   if k.startswith("champion.")]
        decisions = Counter(v.split(":", 1)[0] for _, v in entries)
        promotions += sum(n for d, n in decisions.items() if d.startswith("promote"))
        problems += [f"{name}: {d!r} written {n} times" for d, n in decisions.items() if n > 1]
        last = max(entries)[1].split(":", 1)[0].split()[-1] if entries else None
        champion = c.get_registered_model(name).aliases.get("champion")
        if last != str(champion):
            problems.append(f"{name}: champion is {champion}, the ledger says {last}")
        monitors = tracking.finished_runs(name, "monitor")
        keys = Counter(r.data.tags.get("driftctl.window_key") for r in monitors)
        twice += sum(n - 1 for n in keys.values())
    return problems, twice, promotions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=50)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--small", type=int, default=5, help="models of the small-scale cycle 1")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--worker", dest="role", help=argparse.SUPPRESS)
    p.add_argument("--cycle", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--controller", default="", help=argparse.SUPPRESS)
    p.add_argument("--policy", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        return worker(args)
    if not 1 <= args.small < args.models or args.cycles < 2:
        p.error("need 1 <= --small < --models and --cycles >= 2")

    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens
    root = Path(tempfile.mkdtemp(prefix="driftctl-many-"))
    began = time.perf_counter()
    server = start(root, f"sqlite:///{root / 'mlflow.db'}", artifacts=root / "artifacts",
                   workers=2)
    url, log_path = server.url, server.log
    print(summary())
    print(f"mlflow server {url} (sqlite, 2 workers) ready in {time.perf_counter() - began:.0f} s")
    os.environ["MLFLOW_TRACKING_URI"] = url
    d = Driver(root, url)
    names = [name_of(i) for i in range(args.models)]
    small, rest = names[: args.small], names[args.small:]
    cycles: list[dict] = []
    try:
        _, t = d.together([("setup", h) for h in halves(small)])
        _, t1 = d.together([("feed", h, 1) for h in halves(small)])
        recs, t2 = d.together([("cycle", small, 1, "A")])
        for r in recs:
            r["on_server"] = len(small)
        cycles += recs
        print(f"{len(small)} models: set up in {t:.0f} s, first batches {t1:.0f} s, "
              f"cycle 1 by one controller {t2:.0f} s")

        _, t = d.together([("setup", h) for h in halves(rest)])
        _, t1 = d.together([("feed", h, 1) for h in halves(rest)])
        lists = race_lists(rest)
        recs, t2 = d.together([("cycle", lst, 1, c) for lst, c in zip(lists, "AB", strict=True)])
        for r in recs:
            r["on_server"] = len(names)
        cycles += recs
        print(f"{len(rest)} more models: set up in {t:.0f} s, first batches {t1:.0f} s, "
              f"cycle 1 by two controllers {t2:.0f} s")
        for k in range(2, args.cycles + 1):
            _, t1 = d.together([("feed", h, k) for h in halves(names)])
            before = served(log_path)
            lists = race_lists(names)
            jobs = [("cycle", lst, k, c) for lst, c in zip(lists, "AB", strict=True)]
            recs, t2 = d.together(jobs)
            for r in recs:
                r["on_server"] = len(names)
            cycles += recs
            counted = sum(r["requests"] for r in recs)
            logged = served(log_path) - before
            print(f"cycle {k}: batches {t1:.0f} s; {len(recs)} cycles by two controllers in "
                  f"{t2:.0f} s ({len(lists[0])} + {len(lists[1])} models, "
                  f"{sum(overlapping(n) for n in names)} shared); requests counted by the "
                  f"controllers {counted}, by the server's access log {logged or 'n/a'}")
        problems, twice, promotions = ledger_check(names)
    finally:
        server.stop()

    print("\ntracking requests per `driftctl cycle` that did not retrain, one controller on "
          "the model")
    calm = [r for r in cycles if not r["retrained"]]
    solo = [r for r in calm if not overlapping(r["model"])]
    first_small = [r["requests"] for r in solo if r["cycle"] == 1 and r["on_server"] == len(small)]
    first_all = [r["requests"] for r in solo if r["cycle"] == 1 and r["on_server"] == len(names)]
    print(f"  cycle 1, {len(small):3d} models on the server: {spread(first_small)}")
    print(f"  cycle 1, {len(names):3d} models on the server: {spread(first_all)}")
    for k in range(2, args.cycles + 1):
        print(f"  cycle {k}, {len(names):3d} models on the server: "
              f"{spread([r['requests'] for r in solo if r['cycle'] == k])}")
    print("two controllers racing on the model (each one's cycle counted)")
    for k in range(1, args.cycles + 1):
        raced = [r["requests"] for r in calm if overlapping(r["model"]) and r["cycle"] == k]
        print(f"  cycle {k}: {spread(raced)}")
    print("cycles that retrained (a challenger built and compared; promotion = auto)")
    for k in range(1, args.cycles + 1):
        moved = [r["requests"] for r in cycles if r["retrained"] and r["cycle"] == k]
        print(f"  cycle {k}: {spread(moved)}")
    secs = [r["seconds"] for r in solo if r["cycle"] > 1]
    if secs:
        print(f"seconds per cycle that did not retrain, cycle 2 on: median "
              f"{statistics.median(secs):.1f}, max {max(secs):.1f}")

    later = [r for r in solo if r["cycle"] == args.cycles]
    if later:
        print(f"\nendpoints of one cycle {args.cycles} ({later[0]['model']}):")
        for call, n in sorted(later[0]["calls"].items(), key=lambda kv: -kv[1]):
            print(f"  {n:3d}  {call}")

    errors = [r for r in cycles if r["rc"] != 0]
    print(f"\nerrors: {len(errors)}")
    for r in errors[:20]:
        print(f"  {r['model']} cycle {r['cycle']} controller {r['controller']}: {r['error']}")
    print(f"ledger problems (a decision written twice, a champion the ledger does not "
          f"name): {len(problems)}")
    for line in problems[:20]:
        print(f"  {line}")
    print(f"promotions in the ledgers: {promotions}")
    print(f"monitor runs made twice for one window by racing controllers: {twice}")
    print("cycles that stood down while the other controller held the window: "
          f"{sum(r.get('stood_down', False) for r in cycles)}")
    print(f"total wall time {time.perf_counter() - began:.0f} s")
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if errors or problems or twice:
        sys.exit(1)


if __name__ == "__main__":
    main()
