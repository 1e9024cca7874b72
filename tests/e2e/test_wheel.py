"""The wheel holds everything the harness needs at run time besides Python code: the packaged
labs, their driver packages, the plans, test_scenarios.py, py.typed and the PowerShell scripts.

The wheel is built with pip from a copy of the sources (so that nothing is written into the
checkout, whose build/ may hold stale files): without build isolation when this environment can
build it (setuptools >= 68 with bdist_wheel), else in pip's isolated build environment.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "harness" / "shipped"


def _local_build_possible() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    has_bdist_wheel = (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None
    return major >= 68 and has_bdist_wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "harness", src / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "out"), str(src)]
    if _local_build_possible():
        cmd.insert(cmd.index("--no-deps"), "--no-build-isolation")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (built,) = (work / "out").glob("dma_lab_harness-*.whl")
    return zipfile.ZipFile(built)


def _shipped(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in SHIPPED.glob(pattern) if p.is_file())


def test_wheel_holds_the_packaged_labs_and_plans(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = [
        *_shipped("lab_config/*.yaml"),
        *_shipped("lab_config/packages/*"),
        *_shipped("testplans/*.yaml"),
        "harness/shipped/testplans/test_scenarios.py",
        "harness/shipped/__init__.py",
    ]
    for name in (
        "virtual.yaml",
        "virtual_pool.yaml",
        "example_lab.yaml",
        "packages/dmalab_nvme_inf0.inf",
        "packages/dmalab_nvme.sys",
        "packages/dmalab-virtual-release-root.cer",
    ):
        assert f"harness/shipped/lab_config/{name}" in expected, name
    assert "harness/shipped/testplans/smoke.yaml" in expected
    missing = [n for n in expected if n not in names]
    assert not missing, missing
    for name in expected:
        assert wheel.read(name) == (ROOT / name).read_bytes(), name


def test_wheel_holds_py_typed_and_the_powershell_scripts(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "harness/py.typed" in names
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "harness").rglob("*.ps1"))
    assert any(s.startswith("harness/windows/ops/") for s in scripts)
    missing = [s for s in scripts if s not in names]
    assert not missing, missing


def test_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    info = f"dma_lab_harness-{harness.__version__}.dist-info"
    metadata = wheel.read(f"{info}/METADATA").decode()
    assert f"\nVersion: {harness.__version__}\n" in metadata
    assert "Provides-Extra: serial" in metadata and "Provides-Extra: keyring" in metadata
    assert "pyserial" in metadata and "keyring" in metadata
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "harness = harness.cli.main:main" in entry_points
    assert "dma_lab_harness = harness.pytest_plugin.plugin" in entry_points
    assert not [n for n in wheel.namelist() if n.startswith(("tests/", "lab_config/"))]
