"""Helpers of `harness run` (run_job.py): earlier runs of a plan, the scenario test files,
signals, stopping pytest after Ctrl-C, `reports/latest`, and history lines of a re-render.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from harness.config.plan import Timeouts
from harness.errors import ConfigError
from harness.private_files import write_private
from harness.report.journal import Journal
from harness.report.run_dir import RunDir
from harness.shipped import scenario_tests_module

#: The least seconds pytest gets to tear down after Ctrl-C (or its controller's death) before
#: SIGTERM; `interrupt_grace_s` gives a run the time its DUTs' teardowns may take.
INTERRUPT_GRACE_S = 300.0
#: Beyond the teardowns' deadlines: pytest's own end (reports, junit.xml, the lab's stop).
GRACE_MARGIN_S = 60.0


def interrupt_grace_s(timeouts: Timeouts, duts: int) -> float:
    """Seconds pytest gets after the SIGINT before SIGTERM: the interrupted scenario's own
    teardown (unplug and unlock, a step each), then the end-of-run teardown of every DUT the
    run opened, one after the other in one process (`DutPool.close`, each bounded by
    `Timeouts.teardown_s`; an xdist worker may have opened every DUT), and a margin; never less
    than INTERRUPT_GRACE_S."""
    needed = 2 * timeouts.step_s + max(1, duts) * timeouts.teardown_s + GRACE_MARGIN_S
    return max(INTERRUPT_GRACE_S, needed)


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scenario_tests(plan_path: Path) -> list[Path]:
    """The scenario test files: `test_*.py` next to the plan, else the packaged
    testplans/test_scenarios.py (harness.shipped). `harness run` calls this before the lab
    starts, so a missing file is a ConfigError (exit 2), never a crash mid-run."""
    local = sorted(plan_path.resolve().parent.glob("test_*.py"))
    if local:
        return local
    packaged = scenario_tests_module()
    if not packaged.is_file():
        raise ConfigError(
            f"no test_*.py next to the plan and no packaged {packaged}: reinstall the harness "
            "or put a test module next to the plan (harness init writes one)",
            path=str(plan_path),
        )
    return [packaged]


def check_writable(folder: Path, what: str = "--reports") -> None:
    """`folder` exists (created if missing) and takes a file: else a ConfigError naming it.

    Checked by writing (and removing) a probe file, not by permission bits: root ignores
    those, and a read-only mount, a full disk or a quota refuse root too."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".harness-probe-", dir=folder)
        try:
            os.write(fd, b"probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"the reports folder cannot be written: {exc.strerror or exc}; nothing was run",
            path=str(folder),
            key=what,
        ) from None


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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
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


def stop(proc: subprocess.Popen[bytes], grace_s: float = INTERRUPT_GRACE_S) -> int:
    """After Ctrl-C: SIGINT to pytest, wait `grace_s` for its teardown, then SIGTERM, then
    SIGKILL.

    Each step waits its whole grace: a further Ctrl-C or SIGTERM is noted and never cuts the
    teardown short (the DUTs would stay halfway); only SIGKILL of this process stops it."""
    steps = (
        (signal.SIGINT, grace_s),
        (signal.SIGTERM, 30.0),
        (signal.SIGKILL, 10.0),
    )
    for sig, grace in steps:
        if proc.returncode is not None:  # reaped: its group id may be another process's now
            return proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        end = time.monotonic() + grace
        while True:
            try:
                return proc.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
            except KeyboardInterrupt:
                sys.stderr.write(
                    "\nstill putting the DUTs back to their baseline (bounded by the teardown's "
                    "deadline); only SIGKILL stops this\n"
                )
    return proc.wait(timeout=10.0)


def point_latest(reports: Path, run_id: str) -> None:
    link = reports / "latest"
    tmp = reports / f".latest.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(run_id, target_is_directory=True)
        tmp.replace(link)
    except OSError:  # no symlinks (some Windows setups): a text file naming the run
        (reports / "latest.txt").write_text(run_id + "\n", encoding="utf-8")


def is_newest(reports: Path, rd: RunDir, plan_name: str) -> bool:
    """Whether no run of any plan in `reports` started after `rd` (then `latest` may name it)."""
    mine = rd.read_info().started
    for d in reports.iterdir() if reports.is_dir() else ():
        if d.is_symlink() or d.resolve() == rd.path.resolve() or not (d / "run.json").is_file():
            continue
        try:
            if RunDir(d).read_info().started > mine:
                return False
        except ConfigError:
            continue
    return True


def drop_history_entry(history: Path, name: str) -> None:
    """Remove the trend line an earlier render of this run appended (Allure appends one per
    render; a resumed run's re-render must not count the run twice)."""
    try:
        lines = history.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return
    kept = []
    for line in lines:
        try:
            same = json.loads(line).get("name") == name
        except (ValueError, AttributeError):
            same = False
        if not same:
            kept.append(line)
    if len(kept) != len(lines):
        write_private(history, "".join(kept))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60] or "plan"


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join(text) + "\n"
