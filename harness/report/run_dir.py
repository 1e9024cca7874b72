"""The layout of one run's directory, `reports/<run-id>/`, and its `run.json`.

    reports/<run-id>/
      run.json            RunInfo: plan, purpose, lab file and its sha256, times, exit code
      journal.jsonl       one line per finished scenario (journal.py)
      junit.xml           pytest's JUnit XML
      allure-results/     allure-pytest results + environment.properties + categories.json
      facts/<dut>.json    what each DUT was: build, KDP, policy, Verifier, installed packages
      progress/<dut>.json the scenario and step each DUT is at (read by the live display)
      pytest.log          pytest's own output
      report.html         the single-file Allure report
      qualification/      summary.html, results.json, manifest.json (qualification plans)
    reports/latest -> <run-id>

>>> RunDir(Path("reports/x")).journal
PosixPath('reports/x/journal.jsonl')
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def journal(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def allure_results(self) -> Path:
        return self.path / "allure-results"

    @property
    def facts(self) -> Path:
        return self.path / "facts"

    @property
    def progress(self) -> Path:
        return self.path / "progress"

    @property
    def pytest_log(self) -> Path:
        return self.path / "pytest.log"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def qualification(self) -> Path:
        return self.path / "qualification"

    def create(self) -> None:
        for d in (self.path, self.allure_results, self.facts, self.progress):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    def read_info(self) -> RunInfo:
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
            return RunInfo(**data)
        except FileNotFoundError:
            raise ConfigError(f"{self.path} is not a run directory (no run.json)") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"unreadable run.json: {exc}", path=str(self.run_json)) from None

    def write_info(self, info: RunInfo) -> None:
        tmp = self.run_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.run_json)

    def read_facts(self) -> dict[str, dict[str, Any]]:
        """facts/<dut>.json of every DUT that ran, by DUT name."""
        out: dict[str, dict[str, Any]] = {}
        if self.facts.is_dir():
            for f in sorted(self.facts.glob("*.json")):
                out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        return out


@dataclass
class RunInfo:
    run_id: str
    plan: str  # path of the plan file
    plan_name: str
    purpose: str  # nightly / qualification / manual
    lab: str  # path of the lab file
    lab_sha256: str
    harness_version: str
    started: str
    argv: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)  # selected scenario ids, in plan order
    finished: str | None = None
    exit_code: int | None = None
