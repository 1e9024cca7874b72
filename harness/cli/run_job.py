"""One attempt of `harness run`: the run directory, the virtual lab, pytest, the report.

`RunJob.execute()` creates `reports/<run-id>/` (run.json first, so even a run that dies early
is on record) or, for `--resume`, takes the existing one; it records the attempt in run.json
(run_attempts.py), starts the virtual lab as a child process when the lab is virtual, runs
pytest on the attempt's scenarios in a child process with live progress in the terminal, stops
the lab, renders report.html from all the run's results (history carried over from the previous
run of the same plan) and the qualification bundle for qualification plans, points
`reports/latest` at the run and returns the exit code of the whole run: 0 all passed, 1 a
scenario failed, 2 usage or configuration error, 3 only infrastructure errors (or not all ran).

If the controller is killed (even by SIGKILL), its children do not live on: pytest holds the
read end of a lifeline pipe (pytest_plugin/lifeline.py) and stops like after Ctrl-C at its EOF;
the virtual lab holds another (virtual_lab/lifeline.py) whose write end pytest holds too, so
the lab outlives pytest's teardown and then stops. A resume appends to the journal, to
allure-results/ (after removing the interrupted scenarios' partial results) and to pytest.log,
merges its JUnit XML into junit.xml, and rebuilds from the journal the Allure result of a
scenario journaled just before the kill (resume.rebuild_allure_results).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from filelock import FileLock

from harness import __version__
from harness.cli.common import ExitCode
from harness.cli.coordinator_records import previous_from_coordinator
from harness.cli.progress_view import ProgressView, count_by_dut
from harness.cli.resume import rebuild_allure_results
from harness.cli.run_attempts import begin_attempt, lock_run, note_process, now_iso
from harness.cli.run_support import (
    drop_history_entry,
    interrupt_grace_s,
    is_newest,
    point_latest,
    scenario_tests,
    sha256_file,
    sigterm_as_interrupt,
    slug,
    stop,
    tail,
    utc_stamp,
)
from harness.cli.scenario_process import plugin_args, scenario_env
from harness.config.lab import Lab
from harness.config.plan import Plan
from harness.config.scenarios import Scenario
from harness.errors import ConfigError, HarnessError, InfrastructureError
from harness.outcomes import Outcome, run_exit_code
from harness.private_files import open_private
from harness.report.allure_prune import prune_results
from harness.report.changes import summary_lines
from harness.report.disk_errors import EXIT_REPORTS_DISK, NOTICE_FD_ENV, is_disk_error
from harness.report.journal import Journal
from harness.report.junit_merge import add_journal_cases, merge_junit
from harness.report.qualification import write_bundle
from harness.report.render import history_file, prepare_results, render_report
from harness.report.run_dir import RunDir, RunInfo
from harness.report.run_pages import RunPages, write_run_pages

#: pytest's own exit codes (pytest.ExitCode) that are not about test results.
_PYTEST_INTERRUPTED, _PYTEST_INTERNAL, _PYTEST_USAGE = 2, 3, 4
#: Seconds between two refreshes of the live display.
REFRESH_S = 0.5


@dataclass
class RunJob:
    lab: Lab
    plan: Plan
    scenarios: list[Scenario]  # what this attempt runs
    reports: Path
    workers: str | None = None  # "-n" value for pytest-xdist
    pytest_args: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    filters: dict[str, Any] = field(default_factory=dict)
    out: TextIO = sys.stdout
    #: --resume: the run to continue (its run.json) and its lock, already held.
    resume: tuple[RunDir, RunInfo, FileLock] | None = None
    #: scenarios of the whole run per DUT, for the live display (default: this attempt's)
    totals: dict[str, int] | None = None
    #: the cost model's lab seconds per DUT for this attempt (the live view's ETA)
    estimates: dict[str, float] = field(default_factory=dict)
    #: matrix.html, matrix.json and changes.json, once written at the end of the attempt
    pages: RunPages | None = None
    #: render report.html at the end (`--no-report`: no; `harness report` renders it later)
    render_html: bool = True

    @property
    def grace_s(self) -> float:
        """Seconds pytest gets to tear down after Ctrl-C: enough for every DUT of the attempt
        (run_support.interrupt_grace_s)."""
        return interrupt_grace_s(self.plan.timeouts, len({s.dut for s in self.scenarios}))

    def execute(self) -> int:
        if self.resume is None:
            rd, info = self._create()
            lock = lock_run(rd)
        else:
            rd, info, lock = self.resume
        try:
            return self._attempt(rd, info)
        except OSError as exc:  # the reports folder took no more writes (disk full, quota)
            if not is_disk_error(exc):
                raise
            return self._reports_disk_failed(str(exc))
        finally:
            lock.release()

    def _reports_disk_failed(self, what: str) -> int:
        """The reports folder refused a write: a clear message and exit 3, no traceback."""
        self.out.write(
            f"\nerror: the reports folder {self.reports} takes no more writes: {what}\n"
            "the run stopped after its end-of-run teardown (a teardown record the disk "
            "refused is printed above); the journal and the report may be incomplete: free "
            f"space, then check the DUTs with `harness lab restore {self.lab.path}`\n"
            f"exit code {int(ExitCode.INFRASTRUCTURE)}\n"
        )
        return ExitCode.INFRASTRUCTURE

    def _create(self) -> tuple[RunDir, RunInfo]:
        # exclusive: two runs started in the same second get their own directories
        rd = RunDir.create_new(self.reports, f"{utc_stamp()}-{slug(self.plan.name)}")
        run_id = rd.path.name
        info = RunInfo(
            run_id=run_id,
            plan=str(self.plan.path),
            plan_name=self.plan.name,
            purpose=self.plan.purpose,
            lab=str(self.lab.path),
            lab_sha256=sha256_file(Path(self.lab.path)),
            harness_version=__version__,
            started=now_iso(),
            argv=self.argv,
            scenarios=[s.id for s in self.scenarios],
            plan_sha256=sha256_file(Path(self.plan.path)),
            cwd=os.getcwd(),
            workers=self.workers,
            pytest_args=list(self.pytest_args),
            filters=dict(self.filters),
        )
        rd.write_info(info)
        rd.write_private("selected.txt", "\n".join(info.scenarios) + "\n")
        # `latest` names the run from its first second: after a crash it says what to resume
        point_latest(self.reports, run_id)
        return rd, info

    def _attempt(self, rd: RunDir, info: RunInfo) -> int:
        attempt = begin_attempt(rd, info, scenarios=len(self.scenarios), grace_s=self.grace_s)
        n = attempt["attempt"]
        if self.resume is None:
            self.out.write(f"run {info.run_id}: {len(self.scenarios)} scenarios -> {rd.path}\n")
        elif self.scenarios:
            self.out.write(
                f"resuming run {info.run_id} (attempt {n}): {len(self.scenarios)} of "
                f"{len(info.scenarios)} scenarios have no final outcome -> {rd.path}\n"
            )
        else:
            self.out.write(
                f"run {info.run_id}: every scenario has a final outcome; nothing left to run\n"
            )
        rc: int | None = None
        if self.scenarios:
            again = [s.id for s in self.scenarios]
            if self.resume is not None:
                pruned = prune_results(rd.allure_results, again)
                if pruned.total:
                    self.out.write(
                        f"removed what the interrupted attempt left of {pruned.results} results, "
                        f"{pruned.attachments} attachments, {pruned.containers} containers\n"
                    )
            rc = self._run_pytest(rd, info, attempt)
            if rc == EXIT_REPORTS_DISK:  # pytest stopped: the reports folder refused a write
                attempt["ended"] = info.finished = now_iso()
                attempt["exit_code"] = info.exit_code = int(ExitCode.INFRASTRUCTURE)
                with contextlib.suppress(OSError):  # atomic: run.json is old or new, never torn
                    rd.write_info(info)
                return self._reports_disk_failed(_disk_line(rd.pytest_log))
            if n > 1:
                merge_junit(rd.junit, self._junit(rd, n), again)
                add_journal_cases(rd.junit, Journal(rd.journal).latest())
        if self.resume is not None:  # a kill between a journal line and its Allure result
            rebuilt = rebuild_allure_results(rd, self.plan, self.lab)
            if rebuilt:
                noun = "result" if len(rebuilt) == 1 else "results"
                self.out.write(f"rebuilt {len(rebuilt)} Allure {noun} from journal.jsonl\n")
        code = self._exit_code(rd, info, rc)
        attempt["ended"] = info.finished = now_iso()
        attempt["exit_code"] = info.exit_code = code
        rd.write_info(info)  # before the bundle, whose manifest hashes run.json
        self._render(rd, info, rerender=self.resume is not None)
        if self.resume is None or is_newest(self.reports, rd, info.plan_name):
            point_latest(self.reports, info.run_id)
        self._summary(rd, info, code)
        return code

    # -- pytest --------------------------------------------------------------------------------
    @staticmethod
    def _junit(rd: RunDir, attempt: int) -> Path:
        return rd.junit if attempt == 1 else rd.path / f"junit.attempt-{attempt}.xml"

    def _command(self, rd: RunDir, attempt: int, endpoints: Path | None, life: int) -> list[str]:
        listing = rd.path / ("selected.txt" if attempt == 1 else f"selected.attempt-{attempt}.txt")
        if attempt > 1:
            rd.write_private(listing.name, "\n".join(s.id for s in self.scenarios) + "\n")
        cmd = [sys.executable, "-m", "pytest", *map(str, scenario_tests(Path(self.plan.path)))]
        cmd += ["-p", "no:cacheprovider", *plugin_args(), "-q", "-rN", "--color=no"]
        cmd += ["-p", "harness.pytest_plugin.lifeline", "--lifeline-fd", str(life)]
        cmd += ["--lifeline-grace", str(self.grace_s)]
        cmd += ["--rootdir", str(Path(self.plan.path).resolve().parent)]
        cmd += ["--dma-lab", str(self.lab.path), "--dma-plan", str(self.plan.path)]
        cmd += ["--dma-scenario-list", str(listing), "--dma-run-dir", str(rd.path)]
        for dut in self.filters.get("duts") or ():  # restricts pools: the same DUT assignment
            cmd += ["--dma-dut", str(dut)]
        cmd += ["--alluredir", str(rd.allure_results)]
        cmd += ["--junitxml", str(self._junit(rd, attempt))]
        if endpoints is not None:
            cmd += ["--dma-lab-endpoints", str(endpoints)]
        if self.workers:
            cmd += ["-n", self.workers]  # the plugin hands each worker whole DUTs
        return cmd + self.pytest_args

    def _run_pytest(self, rd: RunDir, info: RunInfo, attempt: dict[str, Any]) -> int:
        with contextlib.ExitStack() as stack:
            endpoints: Path | None = None
            keep: tuple[int, ...] = ()
            if self.lab.virtual is not None:
                from harness.virtual_lab.launcher import start_virtual_lab

                self.out.write("starting the virtual lab ...\n")
                running = stack.enter_context(
                    start_virtual_lab(self.lab.path, keep_log=rd.virtual_lab_log)
                )
                endpoints = running.tempdir / "endpoints.json"
                attempt["lab_tempdir"] = str(running.tempdir)
                note_process(rd, info, attempt, "lab_pid", running.pid)
                if running.lifeline_fd is not None:
                    keep = (running.lifeline_fd,)  # the lab outlives pytest's teardown
            life_read, life_write = os.pipe()  # pytest's lifeline: EOF when we are gone
            stack.callback(_close, life_write)
            totals = self.totals or count_by_dut([s.dut for s in self.scenarios])
            view = ProgressView(
                rd,
                totals,
                self.out,
                seen=len(Journal(rd.journal).read()),
                estimates=self.estimates,
            )
            stack.callback(view.close)
            mode = "wb" if attempt["attempt"] == 1 else "ab"
            with open_private(rd.pytest_log, mode) as log, sigterm_as_interrupt():
                if attempt["attempt"] > 1:
                    log.write(f"\n=== attempt {attempt['attempt']} (resume) ===\n".encode())
                    log.flush()
                # pytest runs in its own session: a Ctrl-C at the terminal reaches this
                # process only, which forwards exactly one SIGINT (also after a SIGTERM).
                # our stderr, for what pytest must say even when pytest.log's disk is full
                notice = _dup_stderr()
                extra = {NOTICE_FD_ENV: str(notice)} if notice is not None else {}
                try:
                    proc = subprocess.Popen(
                        self._command(rd, attempt["attempt"], endpoints, life_read),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        pass_fds=(life_read, *keep, *([notice] if notice is not None else [])),
                        env=scenario_env({**os.environ, **extra}),
                    )
                finally:
                    os.close(life_read)
                    if notice is not None:
                        os.close(notice)
                note_process(rd, info, attempt, "pytest_pid", proc.pid)
                try:
                    while True:
                        try:
                            rc = proc.wait(timeout=REFRESH_S)
                            break
                        except subprocess.TimeoutExpired:
                            view.refresh()
                except KeyboardInterrupt:
                    view.close()
                    self.out.write("\ninterrupted: letting the scenarios tear down ...\n")
                    rc = stop(proc, self.grace_s)
            view.refresh()
            return rc

    def _exit_code(self, rd: RunDir, info: RunInfo, pytest_rc: int | None) -> int:
        if pytest_rc == _PYTEST_USAGE:
            self.out.write(tail(rd.pytest_log))
            return 2
        latest = Journal(rd.journal).latest()
        outcomes = [e.outcome for e in latest.values()]
        if pytest_rc in (_PYTEST_INTERRUPTED, _PYTEST_INTERNAL) and not outcomes:
            self.out.write(tail(rd.pytest_log))
            return 3
        if any(s not in latest for s in info.scenarios):
            outcomes.append(Outcome.NOT_RUN)  # some never finished: not "all passed"
        return run_exit_code(outcomes)

    # -- report --------------------------------------------------------------------------------
    def _render(self, rd: RunDir, info: RunInfo, *, rerender: bool) -> None:
        title = f"{info.plan_name} ({info.purpose}) {info.run_id}"
        history = history_file(self.reports, info.plan_name)
        if rerender:
            drop_history_entry(history, title)
        try:
            previous = previous_from_coordinator(
                self.lab, rd, warn=lambda m: self.out.write(m + "\n")
            )
            self.pages = write_run_pages(rd, previous)
        except (HarnessError, OSError, ValueError) as exc:
            self.out.write(f"matrix.html not written: {exc}\n")
        if not self.render_html:
            self._skip_report(rd)
        else:
            self._render_report(rd, history, title)
        if info.purpose == "qualification":
            write_bundle(rd)

    def _skip_report(self, rd: RunDir) -> None:
        """`--no-report`: allure-results/ completed all the same (a CI's own Allure reads it);
        an earlier attempt's report.html no longer shows the whole run, so it goes."""
        try:
            prepare_results(rd)
        except ConfigError as exc:
            self.out.write(f"allure-results not completed: {exc}\n")
        stale = rd.report_html.exists()
        rd.report_html.unlink(missing_ok=True)
        self.out.write(
            "report.html not rendered (--no-report"
            + ("; the earlier attempt's one was removed" if stale else "")
            + f"): render it with `harness report {rd.path}`\n"
        )

    def _render_report(self, rd: RunDir, history: Path, title: str) -> None:
        try:
            render_report(rd, history=history, title=title)
        except (ConfigError, InfrastructureError) as exc:
            self.out.write(f"report.html not rendered: {exc}\n")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the renderer was stopped, its files removed
            self.out.write(
                f"\ninterrupted: report.html not rendered (render it with `harness report {rd.path}`)\n"
            )

    def _summary(self, rd: RunDir, info: RunInfo, code: int) -> None:
        latest = Journal(rd.journal).latest()
        counts: dict[str, int] = {}
        for e in latest.values():
            counts[e.outcome.value] = counts.get(e.outcome.value, 0) + 1
        total = len(info.scenarios)
        missing = sum(1 for s in info.scenarios if s not in latest)
        shown = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        self.out.write(f"\n{len(latest)} of {total} scenarios: {shown or 'none'}")
        self.out.write(f", {missing} not finished\n" if missing else "\n")
        for e in latest.values():
            if not e.outcome.is_pass:
                self.out.write(f"  {e.outcome.value}: {e.scenario}: {e.extra.get('message', '')}\n")
        if self.pages is not None:
            for line in summary_lines(self.pages.changes):
                self.out.write(line + "\n")
        for name, path in (
            ("report", rd.report_html),
            ("matrix", rd.path / "matrix.html"),
            ("journal", rd.journal),
        ):
            if path.exists():
                self.out.write(f"{name}: {path}\n")
        if rd.qualification.is_dir():
            self.out.write(f"qualification: {rd.qualification / 'summary.html'}\n")
        if len(info.attempts) > 1:
            self.out.write(f"attempts: {len(info.attempts)} (run.json)\n")
        self.out.write(f"exit code {code}\n")


def _dup_stderr() -> int | None:
    """A copy of our stderr for pytest's notices; None when there is none (a daemon's `2>&-`:
    Python then has no sys.stderr, and descriptor 2 may be some file opened since)."""
    if sys.stderr is None:
        return None
    try:
        return os.dup(sys.stderr.fileno())
    except (OSError, ValueError):
        return None


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _disk_line(log: Path) -> str:
    """What pytest said about the refused write (its first such line in pytest.log), if kept."""
    marker = "the reports folder takes no more writes: "
    try:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if marker in line:  # pytest's "! Interrupted: ... !" or the plugin's own line
                return line.split(marker, 1)[1].split("; stopping", 1)[0].rstrip(" !")
    except OSError:
        pass
    return "pytest could not write its results"
