"""A wheel built from the repository holds every module of the package."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module(tmp_path):
    # Built from a copy: setuptools leaves a build/ folder behind that a later build reuses.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "controller", source / "controller", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("driftctl-*.whl")
    packed = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("controller/")}
    modules = {p.relative_to(source).as_posix() for p in (source / "controller").rglob("*.py")}
    assert modules - packed == set()
