"""WinRM side of the persistent PowerShell host (`harness.remote.ps_host`): Send + Receive per script.

`WinRMShell` inherits `WinRMHostedPowerShell`. The host is a Command in the shell the transport
already reuses, started on first use (1 request); each script is then one Send (more only for a
script over 192 KiB) and one Receive that the server holds until output arrives, which is the whole
answer with its end frame, written by the host in one piece. A Receive that ends on
OperationTimeout is repeated until the call's deadline; at the deadline the host is terminated
(Signal terminate), the error raised, and the next call starts a new host. A host process that
ends without answering is an `InfrastructureError` too. Forgetting the shell (`_drop`: reboot,
reconnect, transport error) forgets the host too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol

from harness.errors import InfrastructureError
from harness.remote import ps_host
from harness.remote.base import CommandResult
from harness.remote.deadline import Deadline
from harness.remote.shell_core import HostUnavailable
from harness.remote.transcript import Transcript

log = logging.getLogger(__name__)

HOST_SEND_CHUNK = 192 * 1024
#: HRESULT_FROM_WIN32(ERROR_BROKEN_PIPE): a Send to a process that has ended ("The pipe has been
#: ended"); on a host's first Send it means the host ended before reading a line (nothing ran).
BROKEN_PIPE_FAULT = 2147942509
HOST_ERROR_READ_S = 5.0  # the one Receive that reads a failed host's error text
SHELL_GONE_FAULT = 2150858843  # the shell is not on the server any more (InvalidSelectors)


class _ShellGoneBeforeSend(Exception):
    """The first Send of a request found its shell deleted: nothing of the request ran."""  # one Send (about 256 KB base64) within WinRM's 500 KB envelope


class WinRMHostedPowerShell:
    """Mixin: the persistent-host path of `WinRMShell.run_powershell`."""

    transcript: Transcript
    powershell_starts: int
    _lock: threading.Lock
    _proto: Protocol | None
    _shell_id: str | None
    _host_id: str | None

    @property
    def _where(self) -> str:
        raise NotImplementedError

    def _open(self, dl: Deadline) -> tuple[Protocol, str]:
        raise NotImplementedError

    def _set_timeouts(self, dl: Deadline, *, receive: bool = False) -> None:
        raise NotImplementedError

    def _translate(self, dl: Deadline, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _terminate(self, proto: Protocol, shell_id: str, command_id: str) -> None:
        raise NotImplementedError

    def _start_command(
        self, dl: Deadline, command: str, args: list[str], doing: str
    ) -> tuple[Protocol, str, str]:
        raise NotImplementedError

    def _why_host_ended(self, proto: Protocol, shell_id: str, host_id: str, dl: Deadline) -> str:
        """What a host that ended before its first statement printed (one bounded Receive)."""
        said, rc = "", None
        try:
            self._set_timeouts(dl.child(HOST_ERROR_READ_S, "the host's error"), receive=True)
            _, e, rc, _ = proto.get_command_output_raw(shell_id, host_id)
            said = ps_host.combine_errors("", e)[:300]
            proto.cleanup_command(shell_id, host_id)
        except Exception as exc:  # the message is a courtesy; the fallback does not need it
            log.info("reading the failed host's error on %s: %s", self._where, type(exc).__name__)
        return (
            f"the persistent PowerShell host could not start (exit {rc} before its first "
            f"statement; the Send faulted 2147942509, the pipe has been ended): "
            f"{said or 'no message'}"
        )

    def _run_hosted(self, script: str, dl: Deadline) -> CommandResult:
        req = ps_host.new_request(script)
        reader = ps_host.AnswerReader(req.nonce)
        err: list[bytes] = []
        started = time.monotonic()
        try:
            with self._lock:
                answer = self._hosted_locked(req, dl, reader, err)
        except InfrastructureError as exc:
            ps_host.record_failure(
                self.transcript, script, reader.partial_stdout, err, started, str(exc)
            )
            raise
        return ps_host.record_answer(self.transcript, script, answer, err, started)

    def _hosted_locked(
        self, req: ps_host.Request, dl: Deadline, reader: ps_host.AnswerReader, err: list[bytes]
    ) -> ps_host.Answer:
        try:
            return self._hosted_once(req, dl, reader, err)
        except _ShellGoneBeforeSend:
            # the server deleted the shell (IdleTimeOut, service restart) before this request's
            # first byte was taken: nothing ran, so once more in a new shell with a new host
            return self._hosted_once(req, dl, reader, err)

    def _hosted_once(
        self, req: ps_host.Request, dl: Deadline, reader: ps_host.AnswerReader, err: list[bytes]
    ) -> ps_host.Answer:
        if self._proto is None or self._shell_id is None:
            self._open(dl)
        fresh = self._host_id is None
        if fresh:
            # stdin a pipe (in console mode, pywinrm's default, ReadLine returns at most 254
            # characters of a request line); a new shell before the operations quota
            _, _, self._host_id = self._start_command(
                dl, ps_host.launch_command_line(), [], "starting the persistent PowerShell host"
            )
            self.powershell_starts += 1
        proto, shell_id = self._proto, self._shell_id
        assert proto is not None and shell_id is not None
        host_id = self._host_id
        assert host_id is not None
        i = 0
        try:
            try:
                with self._translate(dl, "sending the script to the persistent PowerShell host"):
                    for i in range(0, len(req.line), HOST_SEND_CHUNK):
                        self._set_timeouts(dl)
                        try:
                            proto.send_command_input(
                                shell_id, host_id, req.line[i : i + HOST_SEND_CHUNK], end=False
                            )
                        except WSManFaultError as fault:
                            if fresh and i == 0 and fault.wsman_fault_code == BROKEN_PIPE_FAULT:
                                # the new host ended before reading its stdin: nothing ran
                                raise HostUnavailable(
                                    self._why_host_ended(proto, shell_id, host_id, dl)
                                ) from fault
                            raise
            except InfrastructureError as exc:
                gone = getattr(exc.__cause__, "wsman_fault_code", None) == SHELL_GONE_FAULT
                if gone and i == 0 and not reader.partial_stdout:
                    raise _ShellGoneBeforeSend from exc
                raise
            while True:
                if dl.expired:
                    raise dl.error(
                        "the script was still running; the persistent PowerShell host is "
                        "terminated (Signal terminate)"
                    )
                with self._translate(dl, "receiving output"):
                    self._set_timeouts(dl, receive=True)
                    try:
                        o, e, rc, done = proto.get_command_output_raw(shell_id, host_id)
                    except WinRMOperationTimeoutError:
                        continue  # nothing within one poll period
                reader.feed(o)
                err.append(e)
                if reader.done:
                    return reader.answer()
                if done:  # the host process ended without answering
                    self._host_id = None
                    raise InfrastructureError(
                        f"the persistent PowerShell host on {self._where} ended (exit {rc}) "
                        "before answering; the next call starts a new one"
                    )
        except InfrastructureError:
            if dl.expired and self._proto is not None and self._host_id is not None:
                self._terminate(proto, shell_id, host_id)
            self._host_id = None
            raise
