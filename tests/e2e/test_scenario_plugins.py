"""The scenario process of `harness run` loads the harness's plugins, not whatever else is
installed (harness/cli/scenario_process.py).

Two pytest plugins are installed for real beside the harness (a `.dist-info` with a `pytest11`
entry point on PYTHONPATH, which is how pip installs one): each writes its name to a file when
pytest loads it. A run that names one of them after `--` loads that one only.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.test_cli_run import harness_run, journal, plan_file


def _install_plugin(site: Path, name: str) -> None:
    (site / f"{name}.py").write_text(
        "import os\n\n\n"
        "def pytest_configure(config):\n"
        "    with open(os.environ['PLANTED_PLUGINS_LOG'], 'a') as f:\n"
        f"        f.write('{name}\\n')\n"
    )
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[pytest11]\n{name} = {name}\n")


def test_a_run_loads_only_the_plugins_it_names(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for name in ("planted_autoload", "planted_named"):
        _install_plugin(site, name)
    log = tmp_path / "loaded.txt"
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    plan = plan_file(tmp_path, "plugins", session=["unlocked"])
    reports = tmp_path / "reports"
    r = harness_run(
        str(plan),
        "--reports",
        str(reports),
        "--no-report",
        "--",
        "-p",
        "planted_named",
        env={"PYTHONPATH": path, "PLANTED_PLUGINS_LOG": str(log)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert [line["outcome"] for line in journal((reports / "latest").resolve())] == ["passed"]
    # loaded by the scenario process, once: not the one only installed
    assert log.read_text().splitlines() == ["planted_named"]
