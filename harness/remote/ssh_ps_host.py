"""SSH side of the persistent PowerShell host (`harness.remote.ps_host`): one channel, one line per script.

`SshShell` inherits `SshHostedPowerShell`. The host is one exec channel on the reused connection
(`cmd.exe /c powershell.exe ... -EncodedCommand <loop>`, the loop printing its PID first:
`ssh_exec.host_bootstrap`), opened on first use and kept open: each script is one line written
to the channel and one answer read back until its end frame, a single exchange instead of
channel open + exec + output/exit-status. At the call's deadline the channel is closed, and as
Windows OpenSSH leaves the process running (Win32-OpenSSH#1751) its tree is ended by PID over a
fresh channel (`taskkill /PID n /T /F`, in the transcript); then the error is raised and the
next call opens a new host; dropping the connection (reboot, reconnect, transport
error) drops the host with it. A host process that ends without answering is an
`InfrastructureError` naming its exit status; if it ended before even printing its PID (its
first statement, so no request of ours ran: e.g. an application control policy or Constrained
Language refuses it), that is `HostUnavailable`, on which `SshShell` falls back to per-call
PowerShell for good (recorded in the transcript).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time

import paramiko

from harness.errors import InfrastructureError
from harness.remote import ps_host
from harness.remote.base import CommandResult
from harness.remote.deadline import Deadline
from harness.remote.shell_core import HostUnavailable
from harness.remote.ssh_exec import PidReader, host_command_line
from harness.remote.transcript import Transcript

log = logging.getLogger(__name__)

_POLL_SLICE_S = 0.25  # longest single wait before re-checking the deadline
EOF_GRACE_S = 1.0  # exit status came, EOF did not (Win32-OpenSSH#2452): the process has ended
_BUF = 65536


def signed32(code: int) -> int:
    """A Windows exit code (uint32 on the wire) as the signed 32-bit value Windows reports."""
    return code - (1 << 32) if code >= 1 << 31 else code


class SshHostedPowerShell:
    """Mixin: the persistent-host path of `SshShell.run_powershell`."""

    transcript: Transcript
    powershell_starts: int
    _lock: threading.Lock
    _host_chan: paramiko.Channel | None
    _host_pids: PidReader

    def _connected(self, dl: Deadline) -> paramiko.SSHClient:
        raise NotImplementedError

    def _translate(self, dl: Deadline, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _lost(self, why: str) -> InfrastructureError:
        raise NotImplementedError

    def _exec_line(self, client: paramiko.SSHClient, line: str, dl: Deadline) -> str:
        raise NotImplementedError

    def _end_process(self, pid: int | None, what: str) -> str:
        raise NotImplementedError

    def _run_hosted(self, script: str, dl: Deadline) -> CommandResult:
        req = ps_host.new_request(script)
        reader = ps_host.AnswerReader(req.nonce)
        err: list[bytes] = []
        started = time.monotonic()
        try:
            with self._lock, self._translate(dl, "running a script in the persistent host"):
                answer = self._hosted_locked(req, dl, reader, err)
        except InfrastructureError as exc:
            ps_host.record_failure(
                self.transcript, script, reader.partial_stdout, err, started, str(exc)
            )
            raise
        return ps_host.record_answer(self.transcript, script, answer, err, started)

    def _close_host(self) -> None:
        chan, self._host_chan = self._host_chan, None
        if chan is not None:
            with contextlib.suppress(Exception):
                chan.close()

    def _host_channel(self, dl: Deadline) -> paramiko.Channel:
        client = self._connected(dl)
        chan = self._host_chan
        if chan is not None and not chan.closed and not chan.eof_received:
            return chan
        self._close_host()
        line = self._exec_line(client, host_command_line(), dl)
        transport = client.get_transport()
        assert transport is not None
        try:
            chan = transport.open_session(timeout=max(0.1, dl.remaining()))
            chan.settimeout(max(0.1, dl.remaining()))
            chan.exec_command(line)
        except EOFError as exc:
            raise self._lost("EOF") from exc
        self._host_chan = chan
        self._host_pids = PidReader()
        self.powershell_starts += 1
        return chan

    def _hosted_locked(
        self, req: ps_host.Request, dl: Deadline, reader: ps_host.AnswerReader, err: list[bytes]
    ) -> ps_host.Answer:
        chan = self._host_channel(dl)
        try:
            chan.settimeout(max(0.1, dl.remaining()))
            try:
                chan.sendall(req.line)
            except (OSError, EOFError) as exc:
                if not chan.exit_status_ready():  # the connection went while the line was sent
                    raise self._lost(type(exc).__name__) from exc
                # else the host ended before its line was sent: its exit status says why (below)
            quiet_since: float | None = None  # since the exit status or the last data after it
            while True:
                got = False
                while chan.recv_ready():
                    reader.feed(self._host_pids.feed(chan.recv(_BUF)))
                    got = True
                while chan.recv_stderr_ready():
                    err.append(chan.recv_stderr(_BUF))
                    got = True
                if reader.done:
                    return reader.answer()
                finished = chan.closed or chan.eof_received
                if not finished and chan.exit_status_ready():  # EOF may never come (#2452)
                    now = time.monotonic()
                    quiet_since = now if quiet_since is None or got else quiet_since
                    finished = now - quiet_since >= EOF_GRACE_S
                if finished and chan.exit_status_ready():
                    rc = chan.exit_status  # -1: none came (the connection dropped)
                    self._close_host()
                    if rc == -1:
                        raise self._lost("no exit status")
                    if self._host_pids.pid is None and not reader.partial_stdout:
                        said = ps_host.combine_errors("", b"".join(err))[:300]
                        raise HostUnavailable(
                            f"the persistent PowerShell host could not start (exit "
                            f"{signed32(rc)} before its first statement): {said or 'no message'}"
                        )
                    raise InfrastructureError(
                        f"the persistent PowerShell host ended (exit {signed32(rc)}) before "
                        "answering; the next call starts a new one"
                    )
                if dl.expired:
                    self._close_host()
                    note = self._end_process(self._host_pids.pid, "the persistent host")
                    raise dl.error(
                        "the script was still running; the persistent PowerShell host's "
                        f"channel was closed; {note}"
                    )
                wait = min(dl.remaining(), _POLL_SLICE_S)
                if finished and quiet_since is None:
                    chan.status_event.wait(wait)
                else:
                    select.select([chan], [], [], wait)
        except BaseException:
            self._close_host()
            raise
