"""The attempts of one run: the run directory's lock, the record of each attempt in run.json,
and the processes an attempt left behind.

A run is executed by one or more attempts: the first `harness run PLAN`, then one per
`harness run --resume RUN_DIR`. The controller of an attempt holds `RUN_DIR/.run.lock` (an OS
file lock, released by the kernel when the controller dies, even by SIGKILL) and records in
run.json who it is (pid and the process's start time, so a reused pid is not mistaken for it),
and the pids of the pytest child and the virtual lab it started. A resume uses that record to
wait, with a deadline, for the processes of a killed attempt to finish tearing down.

Process checks use /proc on Linux and `os.kill(pid, 0)` elsewhere on POSIX.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from harness.errors import ConfigError
from harness.private_files import private_dir
from harness.report.run_dir import RunDir, RunInfo

#: Seconds between two checks while waiting for the processes of a killed attempt.
POLL_S = 0.2


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunBusy(Exception):
    """The run directory is locked by a live controller."""


def lock_run(rd: RunDir) -> FileLock:
    """Take the run's lock at once, or raise RunBusy naming the controller that holds it."""
    private_dir(rd.lock.parent)
    lock = FileLock(str(rd.lock), is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = "unknown"
        try:
            last = rd.read_info().attempts[-1]
            who = f"controller pid {last.get('pid')}, attempt started {last.get('started')}"
        except (ConfigError, IndexError):  # only for the message
            pass
        raise RunBusy(f"{rd.path} is being run right now ({who})") from None
    return lock


def proc_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks after boot, Linux), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def alive(pid: int | None, start: str | None = None) -> bool:
    """Whether process `pid` still runs (and is the one that started at `start`, if known)."""
    if not pid or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc: kill(0) is all we know
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return False  # exited; only its parent's wait is missing
    return start is None or (len(fields) > 19 and fields[19] == start)


@dataclass(frozen=True)
class Leftover:
    role: str  # "controller", "pytest", "virtual lab"
    pid: int
    start: str | None

    def __str__(self) -> str:
        return f"{self.role} pid {self.pid}"


def leftovers(attempt: dict[str, Any]) -> list[Leftover]:
    """The processes of `attempt` that still run."""
    found = [
        Leftover(role, int(attempt[key]), attempt.get(f"{key}_start"))
        for role, key in (
            ("controller", "pid"),
            ("pytest", "pytest_pid"),
            ("virtual lab", "lab_pid"),
        )
        if attempt.get(key)
    ]
    return [p for p in found if alive(p.pid, p.start)]


def wait_gone(processes: Iterable[Leftover], timeout_s: float) -> list[Leftover]:
    """Wait until none of `processes` runs, at most `timeout_s`; return those still running."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in processes if alive(p.pid, p.start)]
    while left and time.monotonic() < deadline:
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        left = [p for p in left if alive(p.pid, p.start)]
    return left


def begin_attempt(rd: RunDir, info: RunInfo, *, scenarios: int, grace_s: float) -> dict[str, Any]:
    """Append this controller's attempt to run.json and return its (mutable) record."""
    attempt: dict[str, Any] = {
        "attempt": len(info.attempts) + 1,
        "started": now_iso(),
        "ended": None,
        "pid": os.getpid(),
        "pid_start": proc_start(os.getpid()),
        "resumed": bool(info.attempts),
        "scenarios": scenarios,
        "grace_s": grace_s,
        "exit_code": None,
    }
    info.attempts.append(attempt)
    rd.write_info(info)
    return attempt


def note_process(rd: RunDir, info: RunInfo, attempt: dict[str, Any], key: str, pid: int) -> None:
    """Record a child process (`pytest_pid`, `lab_pid`) of the attempt in run.json."""
    attempt[key] = pid
    attempt[f"{key}_start"] = proc_start(pid)
    rd.write_info(info)
