"""`harness init DIR`: a starter lab directory, refused over existing files unless --force, in
which `harness run testplans/smoke.yaml` passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.shipped import packaged_lab_dir, packaged_testplans

TIMEOUT_S = 240


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_init_then_run_smoke(tmp_path: Path) -> None:
    starter = tmp_path / "starter"
    r = harness("init", str(starter), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    labs, plans = starter / "lab_config", starter / "testplans"
    for name in ("virtual.yaml", "virtual_pool.yaml", "example_lab.yaml"):
        assert (labs / name).read_bytes() == (packaged_lab_dir() / name).read_bytes()
    shipped_packages = sorted(p.name for p in (packaged_lab_dir() / "packages").iterdir())
    assert sorted(p.name for p in (labs / "packages").iterdir()) == shipped_packages
    assert sorted(p.name for p in plans.iterdir()) == sorted(
        p.name for p in packaged_testplans().iterdir() if p.suffix in (".yaml", ".py")
    )
    # the plans' and labs' yaml-language-server modelines point at ../schemas/
    for kind in ("lab", "plan"):
        schema = json.loads((starter / "schemas" / f"{kind}.schema.json").read_text())
        assert schema["$schema"].startswith("https://json-schema.org/")
    assert "$schema=../schemas/plan.schema.json" in (plans / "smoke.yaml").read_text()

    # the real-lab template is valid as written (its CA and keys exist only in a real lab)
    r = harness("lab", "validate", "lab_config/example_lab.yaml", "--no-file-checks", cwd=starter)
    assert r.returncode == 0, r.stderr

    r = harness("run", "testplans/smoke.yaml", cwd=starter)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8 of 8 scenarios: 8 passed" in r.stdout
    # the run used the lab and the test module of the starter directory
    info = json.loads(next((starter / "reports").glob("*-smoke/run.json")).read_text())
    assert Path(starter, info["lab"]).resolve() == (labs / "virtual.yaml").resolve()


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    starter = tmp_path / "starter"
    mine = starter / "testplans" / "smoke.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: mine\n", encoding="utf-8")
    r = harness("init", str(starter), cwd=tmp_path)
    assert r.returncode == 2
    assert f"{mine}: already exists (use --force to overwrite)" in r.stderr
    assert "Traceback" not in r.stderr
    assert mine.read_text() == "name: mine\n"
    assert not (starter / "lab_config").exists(), "nothing is written when refused"

    r = harness("init", str(starter), "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert mine.read_bytes() == (packaged_testplans() / "smoke.yaml").read_bytes()


def test_init_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("", encoding="utf-8")
    r = harness("init", str(f), cwd=tmp_path)
    assert r.returncode == 2
    assert "is not a directory" in r.stderr
