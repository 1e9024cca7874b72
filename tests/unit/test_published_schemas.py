"""The committed JSON Schemas (schemas/*.schema.json) are what `harness schema` prints, and every
shipped YAML names its schema for editors (yaml-language-server modeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["lab", "plan"])
def test_committed_schema_is_current(kind: str) -> None:
    r = CliRunner().invoke(app, ["schema", kind])
    assert r.exit_code == 0
    committed = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    assert committed == json.loads(r.stdout), (
        f"schemas/{kind}.schema.json is stale: run `harness schema {kind} > schemas/{kind}.schema.json`"
    )


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [("lab_config/*.yaml", "lab"), ("testplans/*.yaml", "plan")],
)
def test_shipped_yaml_names_its_schema(pattern: str, kind: str) -> None:
    files = sorted(ROOT.glob(pattern))
    assert files
    for f in files:
        first = f.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../schemas/{kind}.schema.json", f
