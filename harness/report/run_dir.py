"""The layout of one run's directory, `reports/<run-id>/`, and its `run.json`.

    reports/<run-id>/
      run.json            RunInfo: plan and lab files and their sha256, filters, times, exit
                          code, and one record per attempt (the first run, each --resume)
      journal.jsonl       one line per finished scenario (journal.py)
      junit.xml           pytest's JUnit XML
      allure-results/     allure-pytest results + environment.properties + categories.json
      facts/<dut>.json    what each DUT was: build, KDP, policy, Verifier, installed packages
      progress/<dut>.json the scenario and step each DUT is at (read by the live display)
      progress/.run.lock  held by the controller of the attempt in progress (outside the
                          qualification manifest, like the rest of progress/)
      pytest.log          pytest's own output
      virtual-lab.log     the virtual lab's log, one section per attempt (virtual labs only)
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

from pydantic import TypeAdapter, ValidationError

from harness.errors import ConfigError
from harness.private_files import private_dir, write_private

#: How many runs may start with the same name (same second, same plan) in one folder.
MAX_SAME_NAME = 1000


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
    def virtual_lab_log(self) -> Path:
        return self.path / "virtual-lab.log"

    @property
    def selected(self) -> Path:
        return self.path / "selected.txt"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def qualification(self) -> Path:
        return self.path / "qualification"

    @property
    def lock(self) -> Path:
        return self.progress / ".run.lock"

    def create(self) -> None:
        """The run directory and its sub-directories, mode 0700 whatever the umask: nothing
        written under it (transcripts, attachments, logs) is readable by other users."""
        for d in (self.path, self.allure_results, self.facts, self.progress):
            private_dir(d)

    @classmethod
    def create_new(cls, reports: Path, run_id: str) -> RunDir:
        """A new run directory `reports/<run_id>` made by this call alone: created with an
        exclusive mkdir, and `<run_id>-2`, `-3`, ... when another run (started in the same
        second) has the name already. Its sub-directories are created as by `create`."""
        reports.mkdir(parents=True, exist_ok=True)
        for n in range(1, MAX_SAME_NAME + 1):
            path = reports / (run_id if n == 1 else f"{run_id}-{n}")
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            rd = cls(path)
            rd.create()
            return rd
        raise ConfigError(f"{MAX_SAME_NAME} runs named {run_id}* exist already", path=str(reports))

    def write_private(self, name: str, data: str | bytes) -> Path:
        """Write the file `name` (relative to the run directory) atomically, mode 0600."""
        target = self.path / name
        write_private(target, data)
        return target

    def read_info(self) -> RunInfo:
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
            return _run_info(data, str(self.run_json))
        except FileNotFoundError:
            raise ConfigError(f"{self.path} is not a run directory (no run.json)") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"unreadable run.json: {exc}", path=str(self.run_json)) from None

    def write_info(self, info: RunInfo) -> None:
        write_private(self.run_json, json.dumps(asdict(info), indent=2) + "\n")

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
    # What `harness run --resume` needs to run the rest of the run the same way.
    plan_sha256: str = ""
    cwd: str = ""  # the directory `plan` and `lab` are relative to
    workers: str | None = None  # -n
    pytest_args: list[str] = field(default_factory=list)  # after `--`
    filters: dict[str, Any] = field(default_factory=dict)  # duts, scenario, last_failed
    #: One record per attempt: started, ended, pid (+ pid_start), pytest_pid, lab_pid,
    #: scenarios (how many it ran), resumed (True for --resume), exit_code.
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def resolve(self, name: str) -> Path:
        """`plan` or `lab` as a path usable from here (relative ones are relative to `cwd`)."""
        path = Path(getattr(self, name))
        return path if path.is_absolute() or not self.cwd else Path(self.cwd) / path


def _run_info(data: Any, where: str) -> RunInfo:
    """`run.json`'s content as a RunInfo, every field of its declared type (a
    string where a list belongs is refused): a ConfigError naming the file and the key."""
    if not isinstance(data, dict):
        raise ConfigError("run.json is not a JSON object", path=where)
    try:
        return TypeAdapter(RunInfo).validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in first["loc"]) or None
        raise ConfigError(f"wrong run.json: {first['msg']}", path=where, key=key) from None
