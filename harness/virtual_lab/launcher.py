"""Start a virtual lab as a child process and stop it again, leaving nothing behind.

    with start_virtual_lab("lab_config/virtual.yaml") as lab:
        lab.endpoints.duts["tb-01"].winrm.http_url

The child is `python -m harness.virtual_lab LAB --endpoints-file F --workdir W --ready-fd N`
in its own session (so a Ctrl-C at the terminal reaches the parent only, and the whole process
group can be signalled), with stdout and stderr in a log file in a private temp directory (copied
to `keep_log`, when given, as the lab stops: `harness run` keeps it in the run directory). The
child writes one line to the inherited pipe `N` once the endpoints file is written; the parent
waits on that pipe with a deadline (EOF means the child died). `RunningLab.stop()` sends SIGTERM
to the group, SIGKILL after its deadline, and removes the temp directory. The child also gets a
lifeline pipe (`lifeline.py`): it stops by itself once no process holds `RunningLab.lifeline_fd`
(the parent, and whoever the parent passed it to), so a parent killed by SIGKILL leaves no lab.
Nothing is registered globally: the caller owns the `RunningLab`.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.config.endpoints import LabEndpoints
from harness.errors import InfrastructureError
from harness.private_files import append_private
from harness.virtual_lab.winrm.auth import NTLM_USER_FILE_ENV

_LOG_TAIL_LINES = 30


class RunningLab:
    """A virtual lab child process, its endpoints and its temp directory."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        endpoints: LabEndpoints,
        tempdir: Path,
        lifeline_fd: int | None = None,
        keep_log: Path | None = None,
    ) -> None:
        self.process = process
        self.endpoints = endpoints
        self.tempdir = tempdir
        #: where the lab's log is appended when it stops (None: it goes with the temp directory)
        self.keep_log = keep_log
        #: write end of the lab's lifeline (lifeline.py): the lab stops once no process holds it
        self.lifeline_fd = lifeline_fd

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_file(self) -> Path:
        return self.tempdir / "lab.log"

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the lab, SIGKILL after `timeout_s`; returns its exit code. Idempotent."""
        try:
            return _terminate(self.process, timeout_s)
        finally:
            self._keep_log()
            shutil.rmtree(self.tempdir, ignore_errors=True)
            if self.lifeline_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self.lifeline_fd)
                self.lifeline_fd = None

    def _keep_log(self) -> None:
        """Append the lab's log to `keep_log` (once: a second stop finds no log)."""
        if self.keep_log is None or not self.log_file.is_file():
            return
        try:
            data = self.log_file.read_bytes()
            header = f"=== virtual lab pid {self.process.pid} ===\n".encode()
            append_private(self.keep_log, header + data)
            self.log_file.unlink()
        except OSError as exc:  # a full reports disk: the run's own files come first
            sys.stderr.write(f"the virtual lab's log was not kept in {self.keep_log}: {exc}\n")

    def __enter__(self) -> RunningLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's process group (it leads its own session), or the child alone.

    Only while the child is not reaped: until then its pid, and so its group id, stays its own.
    Once `poll()`/`wait()` has reaped it, the id is free, and on a busy controller (pid_max
    wraps within minutes: every thread takes an id) it may already be the group of another run's
    lab or pytest; nothing is sent then."""
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


def _exited_unreaped(process: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it (`waitid` with WNOWAIT; where Python has
    no `os.waitid`, False: the child is then signalled as if running, which is as safe, since
    it is still unreaped)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return False
    try:
        return waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return False


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    if process.returncode is not None:
        return process.returncode  # reaped earlier: its group id may be someone else's now
    if _exited_unreaped(process):
        # the leader is gone but not reaped, so the group id is still its own: make sure
        # nothing of its group is left either, then reap it
        _signal_group(process, signal.SIGKILL)
    else:
        _signal_group(process, signal.SIGTERM)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


def _wait_ready(fd: int, timeout_s: float) -> bool:
    """True once the child says ready; False on EOF (it died) or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        data = os.read(fd, 64)
        if not data:
            return False
        if b"\n" in data:
            return True


#: In each lab's temp directory: the pid of the process that started the lab.
OWNER_PID = "owner.pid"


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_secrets(tmp: Path | None = None) -> list[Path]:
    """Remove what earlier labs killed with SIGKILL (the OOM killer) left in the temp directory
    with their generated passwords: `harness-ntlm-users-<pid>.txt` of a dead process and
    `harness-vlab-*` directories (endpoints.json) whose starter is dead. Only this user's files,
    never those of a live process. Returns what was removed."""
    tmp = tmp or Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed: list[Path] = []
    for path in tmp.glob("harness-ntlm-users-*.txt"):
        pid = path.stem.rsplit("-", 1)[-1]
        with contextlib.suppress(OSError):
            if pid.isdigit() and (uid is None or path.lstat().st_uid == uid) and _dead(int(pid)):
                path.unlink()
                removed.append(path)
    for folder in tmp.glob("harness-vlab-*"):
        with contextlib.suppress(OSError, ValueError):
            if uid is not None and folder.lstat().st_uid != uid:
                continue
            owner = int((folder / OWNER_PID).read_text(encoding="ascii").strip())
            if _dead(owner):
                shutil.rmtree(folder)
                removed.append(folder)
    return removed


def start_virtual_lab(
    lab_path: str | Path,
    *,
    timeout_s: float = 30.0,
    password: str | None = None,
    keep_log: Path | None = None,
) -> RunningLab:
    """Start the lab of `lab_path` in a child process; InfrastructureError if it does not come up.

    `password` (if given) becomes every DUT's password, passed in the child's environment;
    `keep_log` (if given) is where the lab's log is appended when it stops.
    """
    remove_stale_secrets()
    tempdir = Path(tempfile.mkdtemp(prefix="harness-vlab-"))
    (tempdir / OWNER_PID).write_text(f"{os.getpid()}\n", encoding="ascii")
    endpoints_file = tempdir / "endpoints.json"
    env = dict(os.environ)
    env.pop(NTLM_USER_FILE_ENV, None)  # the lab keeps its own NTLM accounts, not ours
    # the child runs the same harness code as this process, wherever it was imported from
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if password is not None:
        env["HARNESS_VIRTUAL_PASSWORD"] = password
    read_fd, write_fd = os.pipe()
    life_read, life_write = os.pipe()
    cmd = [
        sys.executable,
        "-m",
        "harness.virtual_lab",
        str(lab_path),
        "--endpoints-file",
        str(endpoints_file),
        "--workdir",
        str(tempdir / "work"),
        "--ready-fd",
        str(write_fd),
        "--lifeline-fd",
        str(life_read),
    ]
    try:
        with open(tempdir / "lab.log", "wb") as log:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(write_fd, life_read),
                env=env,
            )
    except OSError as exc:
        for fd in (read_fd, write_fd, life_read, life_write):
            os.close(fd)
        shutil.rmtree(tempdir, ignore_errors=True)
        raise InfrastructureError(f"cannot start the virtual lab: {exc}") from exc
    os.close(write_fd)
    os.close(life_read)
    why = ""
    try:
        if _wait_ready(read_fd, timeout_s):
            endpoints = LabEndpoints.read(endpoints_file)
            return RunningLab(process, endpoints, tempdir, life_write, keep_log)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(1.0)  # EOF on the pipe: the child is exiting
        why = "exited" if process.poll() is not None else f"not ready after {timeout_s:.0f} s"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = f"unreadable endpoints file: {type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C while waiting: never leave the child behind
        os.close(life_write)
        _terminate(process, 5.0)
        shutil.rmtree(tempdir, ignore_errors=True)
        raise
    finally:
        os.close(read_fd)
    os.close(life_write)
    _terminate(process, 5.0)
    tail = _log_tail(tempdir / "lab.log")
    shutil.rmtree(tempdir, ignore_errors=True)
    code = f" (exit code {process.returncode})" if process.returncode is not None else ""
    raise InfrastructureError(
        f"the virtual lab for {lab_path} did not start: {why}{code}; its log ends with:\n{tail}"
    )
