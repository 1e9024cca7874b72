"""One version source: harness.__version__ (pyproject.toml reads it; the CLI prints it)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

import harness
from harness.cli.main import app

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_read_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["dynamic"] == ["version"]
    assert "version" not in pyproject["project"], "a second version in pyproject"
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "harness.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", harness.__version__)


def test_cli_prints_the_version() -> None:
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0
    assert r.stdout.strip() == harness.__version__


def test_changelog_has_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"— {harness.__version__}" in text or f"[{harness.__version__}]" in text
