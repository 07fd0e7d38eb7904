"""The cycle's HTML report, opened in a real headless Chromium with no network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import make_frame
from mlflow.tracking import MlflowClient

from controller.inputs.batches import log_batch
from controller.loop.cycle import REPORT, monitor
from controller.policy import Quality

pytestmark = pytest.mark.slow


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("needs chromium (apt-get install chromium)")
    return exe


def _browser(exe: str, *args: str) -> str:
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_report_renders_offline_and_says_what_drifted(champion, tmp_path):
    from PIL import Image

    exe = _chromium()
    log_batch("credit", make_frame(800, 21, shift=1.5), target="y")
    report = monitor("credit")
    run_id = report.context["run_id"]
    page = Path(MlflowClient().download_artifacts(run_id, REPORT, str(tmp_path)))
    html = page.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing to fetch

    dom = _browser(exe, "--dump-dom", page.as_uri())
    verdict = re.search(r'id="verdict">([^<]+)<', dom)[1]
    assert verdict.startswith("Drift in") and "x1" in verdict and "800 rows" in verdict
    table = dom[dom.index('id="features"'):]
    first = re.search(r"<td>([^<]+)</td>", table)[1]
    assert first == "x1"  # the most important drifted feature leads the table
    assert dom.count("<svg") >= 3  # distributions, attribution, AUC

    # The charts really render: the page draws far more than a copy without its charts.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<svg.*?</svg>", "", html, flags=re.S))
    drawn = {}
    for name, path in (("report", page), ("bare", bare)):
        shot = tmp_path / f"{name}.png"
        _browser(exe, f"--screenshot={shot}", "--window-size=1200,2400", path.as_uri())
        drawn[name] = (np.asarray(Image.open(shot).convert("L")) < 200).mean()
    assert drawn["report"] > 1.5 * drawn["bare"] > 0, drawn


def test_the_report_lists_each_data_quality_alert(champion, tmp_path):
    exe = _chromium()
    batch = make_frame(800, 22).drop(columns="y")
    batch.loc[:159, "segment"] = "z"  # a category the baseline never held
    batch.loc[160:239, "x2"] *= 100  # far beyond the baseline's range
    log_batch("credit", batch)
    report = monitor("credit")
    alerts = {(q.feature, q.check) for q in report.quality_alerts}
    assert {("segment", "unseen_share"), ("x2", "out_of_range_share")} <= alerts
    page = Path(MlflowClient().download_artifacts(report.context["run_id"], REPORT,
                                                  str(tmp_path)))
    dom = _browser(exe, "--dump-dom", page.as_uri())
    assert f"{len(alerts)} data-quality alert(s)" in re.search(r'id="verdict">([^<]+)<', dom)[1]
    table = re.search(r'<table id="quality">(.*?)</table>', dom, re.S)[1]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in table.split("</tr>")[1:-1]]
    assert {(r[0], r[1]) for r in rows} == alerts and len(rows) == len(alerts)
    segment = next(r for r in rows if r[0] == "segment")
    assert float(segment[2]) == pytest.approx(0.2) and "never held" in segment[4]
    assert float(segment[3]) == Quality().max_unseen_share  # the policy's limit
