"""Screenshots of what the MLflow UI shows of driftctl's work, for the README.

Plays a short demo into a sqlite store in a temporary folder, starts a real
``mlflow server`` on a free port of 127.0.0.1 against it, and photographs four pages in
headless Chromium: the experiment's runs, a monitor run, the drift history run's charts
and the champion's version page. PNGs go to ``docs/`` (``ui-*.png``), quantised to a
palette to stay small. Needs Debian's ``chromium``; about two minutes on two cores.

    python benchmarks/screenshots.py [--weeks 6] [--rows 800] [--out docs] [--budget 30000]
                                     [--store DIR]  # keep the demo's store; reuse it if there
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import free_port, mlflow_server
from mlflow.tracking import MlflowClient
from PIL import Image

MODEL = "credit-demo"
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
# The browser reaches the server under a name of its own: on localhost or 127.0.0.1, MLflow
# opens its assistant panel on a first visit, over a third of the page.
HOST = "mlflow-ui.test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--budget", type=int, default=30000, help="virtual time, ms")
    parser.add_argument("--store", type=Path, help="folder of the demo's store (kept)")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs chromium (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)

    with contextlib.ExitStack() as stack:
        if args.store:
            args.store.mkdir(parents=True, exist_ok=True)
            tmp = args.store.resolve()
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        store = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": f"{BIN}:{os.environ['PATH']}"}
        if not (tmp / "mlflow.db").exists():
            started = time.perf_counter()
            subprocess.run(
                [BIN / "driftctl", "demo", "--weeks", str(args.weeks), "--rows", str(args.rows)],
                cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL,
            )
            print(f"demo: {time.perf_counter() - started:.0f} s")
        port = free_port()
        server = stack.enter_context(mlflow_server(
            tmp, store, port=port, env=env,
            extra=("--allowed-hosts", f"{HOST}:{port},127.0.0.1:{port}",
                   "--cors-allowed-origins", f"http://{HOST}:{port}")))
        profiles = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for name, route in _pages(MlflowClient(server.url)):
            path = args.out / f"ui-{name}.png"
            _shoot(browser, f"http://{HOST}:{port}/#{route}", path, args.budget, profiles)
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}: {path.stat().st_size // 1024} KB  #{route}")


def _pages(client: MlflowClient) -> list[tuple[str, str]]:
    """(file name, hash route) of each page; ``workflowType`` picks MLflow 3's machine
    learning view, which a fresh browser does not remember."""
    exp = client.get_experiment_by_name(f"driftctl-{MODEL}").experiment_id
    runs = client.search_runs([exp], order_by=["attributes.start_time DESC"])
    kind = {r.info.run_id: r.data.tags.get("driftctl.kind") for r in runs}
    history = next(r for r in runs if kind[r.info.run_id] == "history")
    drifted = next(
        r for r in runs
        if kind[r.info.run_id] == "monitor" and r.data.tags["driftctl.verdict"] == "drift"
    )
    version = client.get_model_version_by_alias(MODEL, "champion").version
    ml = "?workflowType=machine_learning"
    return [
        ("experiment", f"/experiments/{exp}/runs{ml}"),
        ("monitor-run", f"/experiments/{exp}/runs/{drifted.info.run_id}{ml}"),
        ("history-charts", f"/experiments/{exp}/runs/{history.info.run_id}/model-metrics{ml}"),
        ("version", f"/models/{MODEL}/versions/{version}"),
    ]


def _shoot(browser: str, url: str, path: Path, budget: int, profiles: Path) -> None:
    """One screenshot in a fresh profile (nothing remembered from the page before)."""
    profile = tempfile.mkdtemp(dir=profiles)
    subprocess.run(
        # Without the compositor stages, the charts wait for frames that never come.
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--run-all-compositor-stages-before-draw",
         "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,900",
         f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
         f"--virtual-time-budget={budget}", f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=300,
    )
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)


if __name__ == "__main__":
    main()
