"""One run of `harness run`: the run directory, the virtual lab, pytest, the report.

`RunJob.execute()` creates `reports/<run-id>/` (run.json first, so even a run that dies early
is on record), starts the virtual lab as a child process when the lab is virtual, runs pytest
on the scenario tests in a child process with live progress in the terminal, stops the lab,
renders report.html (history carried over from the previous run of the same plan) and the
qualification bundle for qualification plans, points `reports/latest` at the run and returns
the exit code: 0 all passed, 1 a scenario failed, 2 usage or configuration error, 3 only
infrastructure errors (or nothing ran).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from harness import __version__
from harness.cli.progress_view import ProgressView, count_by_dut
from harness.config.lab import Lab
from harness.config.plan import Plan
from harness.config.scenarios import Scenario
from harness.errors import ConfigError, InfrastructureError
from harness.report.journal import Journal
from harness.report.outcomes import Outcome, run_exit_code
from harness.report.qualification import write_bundle
from harness.report.render import history_file, render_report, repo_root
from harness.report.run_dir import RunDir, RunInfo

#: pytest's own exit codes (pytest.ExitCode) that are not about test results.
_PYTEST_INTERRUPTED, _PYTEST_INTERNAL, _PYTEST_USAGE = 2, 3, 4
#: Seconds between two refreshes of the live display.
REFRESH_S = 0.5
#: Seconds pytest gets to tear down after Ctrl-C before it is terminated.
INTERRUPT_GRACE_S = 300.0


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scenario_tests(plan_path: Path) -> list[Path]:
    """The scenario test files: `test_*.py` next to the plan, else the harness's own."""
    local = sorted(plan_path.resolve().parent.glob("test_*.py"))
    if local:
        return local
    bundled = repo_root() / "testplans" / "test_scenarios.py"
    if not bundled.is_file():
        raise ConfigError(f"no test_*.py next to {plan_path} and no {bundled}")
    return [bundled]


def previous_runs(reports: Path, plan_name: str) -> list[RunDir]:
    """Earlier runs of the plan named `plan_name`, oldest first."""
    runs: list[tuple[str, RunDir]] = []
    if reports.is_dir():
        for d in reports.iterdir():
            if d.is_symlink() or not (d / "run.json").is_file():
                continue
            rd = RunDir(d)
            try:
                info = rd.read_info()
            except ConfigError:
                continue
            if info.plan_name == plan_name:
                runs.append((info.started, rd))
    return [rd for _, rd in sorted(runs, key=lambda t: t[0])]


def not_passed(run: RunDir) -> list[str]:
    """Scenario ids of `run` that did not pass, including those it never finished."""
    latest = Journal(run.journal).latest()
    info = run.read_info()
    ids = [s for s in info.scenarios if s not in latest or not latest[s].outcome.is_pass]
    return ids + [s for s, e in latest.items() if s not in info.scenarios and not e.outcome.is_pass]


@dataclass
class RunJob:
    lab: Lab
    plan: Plan
    scenarios: list[Scenario]
    reports: Path
    workers: str | None = None  # "-n" value for pytest-xdist
    pytest_args: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    out: TextIO = sys.stdout

    def execute(self) -> int:
        run_id = f"{utc_stamp()}-{_slug(self.plan.name)}"
        rd = RunDir(self.reports / run_id)
        self.reports.mkdir(parents=True, exist_ok=True)
        rd.create()
        info = RunInfo(
            run_id=run_id,
            plan=str(self.plan.path),
            plan_name=self.plan.name,
            purpose=self.plan.purpose,
            lab=str(self.lab.path),
            lab_sha256=sha256_file(Path(self.lab.path)),
            harness_version=__version__,
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            argv=self.argv,
            scenarios=[s.id for s in self.scenarios],
        )
        rd.write_info(info)
        (rd.path / "selected.txt").write_text("\n".join(info.scenarios) + "\n", encoding="utf-8")
        self.out.write(f"run {run_id}: {len(self.scenarios)} scenarios -> {rd.path}\n")
        pytest_rc = self._run_pytest(rd)
        code = self._exit_code(rd, pytest_rc)
        info.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        info.exit_code = code
        rd.write_info(info)  # before the bundle, whose manifest hashes run.json
        self._render(rd, info)
        _point_latest(self.reports, run_id)
        self._summary(rd, code)
        return code

    # -- pytest --------------------------------------------------------------------------------
    def _command(self, rd: RunDir, endpoints: Path | None) -> list[str]:
        cmd = [sys.executable, "-m", "pytest", *map(str, scenario_tests(Path(self.plan.path)))]
        cmd += ["-p", "no:cacheprovider", "-q", "-rN", "--color=no"]
        cmd += ["--rootdir", str(Path(self.plan.path).resolve().parent)]
        cmd += ["--lab", str(self.lab.path), "--plan", str(self.plan.path)]
        cmd += ["--scenario-list", str(rd.path / "selected.txt"), "--run-dir", str(rd.path)]
        cmd += ["--alluredir", str(rd.allure_results), "--junitxml", str(rd.junit)]
        if endpoints is not None:
            cmd += ["--lab-endpoints", str(endpoints)]
        if self.workers:
            cmd += ["-n", self.workers, "--dist", "loadgroup"]
        return cmd + self.pytest_args

    def _run_pytest(self, rd: RunDir) -> int:
        with contextlib.ExitStack() as stack:
            endpoints: Path | None = None
            if self.lab.virtual is not None:
                from harness.virtual_lab.launcher import start_virtual_lab

                self.out.write("starting the virtual lab ...\n")
                running = stack.enter_context(start_virtual_lab(self.lab.path))
                endpoints = running.tempdir / "endpoints.json"
            view = ProgressView(rd, count_by_dut([s.dut for s in self.scenarios]), self.out)
            with open(rd.pytest_log, "wb") as log, _sigterm_as_interrupt():
                # pytest runs in its own session: a Ctrl-C at the terminal reaches this
                # process only, which forwards exactly one SIGINT (also after a SIGTERM).
                proc = subprocess.Popen(
                    self._command(rd, endpoints),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    while True:
                        try:
                            rc = proc.wait(timeout=REFRESH_S)
                            break
                        except subprocess.TimeoutExpired:
                            view.refresh()
                except KeyboardInterrupt:
                    self.out.write("\ninterrupted: letting the scenarios tear down ...\n")
                    rc = _stop(proc)
            view.refresh()
            return rc

    def _exit_code(self, rd: RunDir, pytest_rc: int) -> int:
        if pytest_rc == _PYTEST_USAGE:
            self.out.write(_tail(rd.pytest_log))
            return 2
        outcomes = [e.outcome for e in Journal(rd.journal).latest().values()]
        if pytest_rc in (_PYTEST_INTERRUPTED, _PYTEST_INTERNAL) and not outcomes:
            self.out.write(_tail(rd.pytest_log))
            return 3
        if len(outcomes) < len(self.scenarios):
            outcomes.append(Outcome.NOT_RUN)  # some never finished: not "all passed"
        return run_exit_code(outcomes)

    # -- report --------------------------------------------------------------------------------
    def _render(self, rd: RunDir, info: RunInfo) -> None:
        try:
            render_report(
                rd,
                history=history_file(self.reports, info.plan_name),
                title=f"{info.plan_name} ({info.purpose}) {info.run_id}",
            )
        except (ConfigError, InfrastructureError) as exc:
            self.out.write(f"report.html not rendered: {exc}\n")
        if info.purpose == "qualification":
            write_bundle(rd)

    def _summary(self, rd: RunDir, code: int) -> None:
        latest = Journal(rd.journal).latest()
        counts: dict[str, int] = {}
        for e in latest.values():
            counts[e.outcome.value] = counts.get(e.outcome.value, 0) + 1
        missing = len(self.scenarios) - len(latest)
        shown = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        self.out.write(f"\n{len(latest)} of {len(self.scenarios)} scenarios: {shown or 'none'}")
        self.out.write(f", {missing} not finished\n" if missing else "\n")
        for e in latest.values():
            if not e.outcome.is_pass:
                self.out.write(f"  {e.outcome.value}: {e.scenario}: {e.extra.get('message', '')}\n")
        for name, path in (("report", rd.report_html), ("journal", rd.journal)):
            if path.exists():
                self.out.write(f"{name}: {path}\n")
        if rd.qualification.is_dir():
            self.out.write(f"qualification: {rd.qualification / 'summary.html'}\n")
        self.out.write(f"exit code {code}\n")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job) is handled like Ctrl-C: scenarios tear down."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """After Ctrl-C: SIGINT to pytest, wait for its teardown, then SIGTERM, then SIGKILL."""
    steps = (
        (signal.SIGINT, INTERRUPT_GRACE_S),
        (signal.SIGTERM, 30.0),
        (signal.SIGKILL, 10.0),
    )
    for sig, grace in steps:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            continue  # a second Ctrl-C: escalate now
    return proc.wait(timeout=10.0)


def _point_latest(reports: Path, run_id: str) -> None:
    link = reports / "latest"
    tmp = reports / f".latest.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(run_id, target_is_directory=True)
        tmp.replace(link)
    except OSError:  # no symlinks (some Windows setups): a text file naming the run
        (reports / "latest.txt").write_text(run_id + "\n", encoding="utf-8")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60] or "plan"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join(text) + "\n"
