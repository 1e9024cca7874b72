"""`harness run --resume` of a run.json whose values have the wrong types: exit 2 naming the
file and the key, no traceback (issue 18), through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD: dict[str, Any] = {
    "run_id": "20260101T000000Z-smoke",
    "plan": str(ROOT / "testplans" / "smoke.yaml"),
    "plan_name": "smoke",
    "purpose": "manual",
    "lab": str(ROOT / "lab_config" / "virtual.yaml"),
    "lab_sha256": "0" * 64,
    "harness_version": "0",
    "started": "2026-01-01T00:00:00+00:00",
    "scenarios": ["a"],
    "attempts": [{"attempt": 1, "started": "2026-01-01T00:00:00+00:00"}],
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("scenarios", 5),
        ("attempts", "x"),
        ("attempts", [7]),
        ("filters", ["duts"]),
        ("cwd", {"a": 1}),
        ("exit_code", "three"),
    ],
)
def test_resume_wrong_types(tmp_path: Path, key: str, value: object) -> None:
    run_dir = tmp_path / "reports" / GOOD["run_id"]
    (run_dir / "progress").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({**GOOD, key: value}))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(run_dir / "run.json") in result.stderr
    assert f": {key}" in result.stderr
