"""Repository hygiene that CI must enforce: lint/format clean, and CI runs the README's command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    return [exe] if exe else [sys.executable, "-m", "ruff"]


def test_ruff_check_clean() -> None:
    r = subprocess.run(
        [*_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_clean() -> None:
    r = subprocess.run(
        [*_ruff(), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(re.escape(heading) + r".*?```(?:sh|bash)?\n(.*?)```", text, re.S)
    assert m, f"README has no code block under {heading!r}"
    return m.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    command = _readme_block("### Run the tests")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines(), f"README test command {command!r} not verbatim in .ci/run"


@pytest.mark.parametrize("heading", ["### Run the main job", "### Run the tests"])
def test_readme_commands_are_single_lines(heading: str) -> None:
    assert "\n" not in _readme_block(heading)


def test_the_repository_stands_alone() -> None:
    """Nothing outside the tests refers to files beside the clone (../shared): a plain clone, a
    wheel and the docs must be readable and runnable on their own."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        if name.startswith(("tests/", ".ci/")) or not (ROOT / name).is_file():
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if any(s in text for s in ("../shared", "/work/shared", "windows-dma.md")):
            offenders.append(name)
    assert offenders == []
