"""Exec channels of the SSH transport: one command per channel, its exit status, its process.

`SshChannels` is a mixin of `SshShell`: `_run_channel` sends a line (and stdin), collects output
until the exit status or the deadline (an exit status whose EOF never comes, Win32-OpenSSH#2452,
is accepted `EOF_GRACE_S` after the last data), `_exec_line` wraps the line for the DUT's
DefaultShell (probed once per connection, `ssh_exec`), and `_end_process` ends a process tree
that a deadline left running (`taskkill /PID n /T /F` over a fresh channel, its own deadline
`KILL_TIMEOUT_S`, recorded in the transcript).
"""

from __future__ import annotations

import logging
import select
import time

import paramiko

from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline
from harness.remote.ssh_exec import SHELL_PROBE, PidReader, kill_line, wrap_line
from harness.remote.ssh_ps_host import EOF_GRACE_S, signed32
from harness.remote.transcript import Transcript

log = logging.getLogger(__name__)

_POLL_SLICE_S = 0.25  # longest single wait before re-checking the deadline
_BUF = 65536
KILL_TIMEOUT_S = 10.0  # taskkill of a process left running at a deadline


class SshChannels:
    """Mixin: exec channels on `SshShell`'s connection (see the module doc)."""

    transcript: Transcript
    _cmd_shell: bool | None

    @property
    def _where(self) -> str:
        raise NotImplementedError

    def _connected(self, dl: Deadline) -> paramiko.SSHClient:
        raise NotImplementedError

    def _lost(self, why: str) -> InfrastructureError:
        raise NotImplementedError

    def _exec_line(self, client: paramiko.SSHClient, line: str, dl: Deadline) -> str:
        """`line` as sent: through cmd.exe whatever the DefaultShell (probed once per connection)."""
        if self._cmd_shell is None:
            rc = self._run_channel(client, SHELL_PROBE, None, dl, [], [])
            self._cmd_shell = rc == 0
            if not self._cmd_shell:
                log.info("%s: OpenSSH's DefaultShell is not cmd.exe", self._where)
        return wrap_line(line, cmd_default_shell=self._cmd_shell)

    def _end_process(self, pid: int | None, what: str) -> str:
        """End process `pid`'s tree after a deadline (Windows OpenSSH leaves it running)."""
        if pid is None:
            return f"{what} did not report its process id; it may still run on the host"
        line = kill_line(pid)
        kdl = Deadline.after(KILL_TIMEOUT_S, f"{line} on {self._where}")
        out: list[bytes] = []
        err: list[bytes] = []
        started = time.monotonic()
        try:
            client = self._connected(kdl)
            rc = self._run_channel(client, self._exec_line(client, line, kdl), None, kdl, out, err)
        except (InfrastructureError, paramiko.SSHException, OSError, EOFError) as exc:
            self.transcript.record(
                line, exit_code=None, stdout="", stderr="", duration_s=0.0, error=str(exc)
            )
            return f"ending its process {pid} failed ({exc}); it may still run on the host"
        stdout = b"".join(out).decode("utf-8", "replace")
        stderr = b"".join(err).decode("utf-8", "replace")
        self.transcript.record(
            line, exit_code=rc, stdout=stdout, stderr=stderr, duration_s=time.monotonic() - started
        )
        if rc == 0:
            return f"its process {pid} and the processes it started were ended ({line})"
        return f"{line} answered {rc}: {(stderr or stdout).strip()[:200]}"

    def _run_channel(
        self,
        client: paramiko.SSHClient,
        line: str,
        stdin: bytes | None,
        dl: Deadline,
        out: list[bytes],
        err: list[bytes],
    ) -> int:
        """One exec channel: send `line` (and `stdin`), collect until exit status or deadline."""
        transport = client.get_transport()
        assert transport is not None
        try:
            chan = transport.open_session(timeout=max(0.1, dl.remaining()))
        except EOFError as exc:
            raise self._lost("EOF") from exc
        try:
            chan.settimeout(max(0.1, dl.remaining()))
            chan.exec_command(line)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()  # Windows OpenSSH: stdin ends, as under a non-interactive ssh
            return self._collect(chan, dl, out, err)
        except EOFError as exc:  # the connection went away while the request was on its way
            chan.close()
            raise self._lost("EOF") from exc
        except BaseException:
            chan.close()
            raise

    def _collect(
        self, chan: paramiko.Channel, dl: Deadline, out: list[bytes], err: list[bytes]
    ) -> int:
        quiet_since = time.monotonic()  # the later of: the last data, the exit status
        status_seen = False
        while True:
            if self._drain(chan, out, err):
                quiet_since = time.monotonic()
            finished = chan.closed or chan.eof_received  # asyncssh may close without an EOF
            if not finished and chan.exit_status_ready():
                # Win32-OpenSSH#2452: exit status, but a grandchild keeps the pipes open
                if not status_seen:
                    status_seen, quiet_since = True, time.monotonic()
                finished = time.monotonic() - quiet_since >= EOF_GRACE_S
            if finished and chan.exit_status_ready():
                self._drain(chan, out, err)
                rc = chan.exit_status  # paramiko: -1 = none came (a uint32 otherwise)
                chan.close()
                if rc == -1:
                    raise self._lost("no exit status")
                return signed32(rc)
            if dl.expired:
                chan.close()
                raise dl.error("the command was still running; its channel was closed")
            wait = min(dl.remaining(), _POLL_SLICE_S)
            if finished:
                chan.status_event.wait(wait)  # output is complete; only the exit status is due
            else:
                select.select([chan], [], [], wait)

    @staticmethod
    def _drain(chan: paramiko.Channel, out: list[bytes], err: list[bytes]) -> bool:
        got = False
        while chan.recv_ready():
            out.append(chan.recv(_BUF))
            got = True
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(_BUF))
            got = True
        return got


def without_pid(out: list[bytes], reports_pid: bool) -> bytes:
    """A per-call powershell.exe's stdout without the PID line it printed first."""
    data = b"".join(out)
    if not reports_pid:
        return data
    reader = PidReader()
    return reader.feed(data) + reader.flush()
