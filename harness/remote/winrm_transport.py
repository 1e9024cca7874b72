"""WinRM transport: ONE authenticated connection and ONE cmd shell reused across calls (pywinrm).

Per command: Command, Receive (until Done), Signal terminate = 3 SOAP requests on the same
connection; the shell is created once (plus the NTLM handshake once) and deleted at `close()`.
pywinrm's OperationTimeout is only a poll period: every request gets a read timeout derived from
the call's `Deadline`, and a command still running at the deadline is terminated on the host
(Signal terminate) before `InfrastructureError` is raised.

PowerShell (default, `persistent_powershell=True`): the first `run_powershell` starts ONE
persistent PowerShell host in the shell (`harness.remote.ps_host`: a Command running
`powershell.exe ... -EncodedCommand <loop>`); every script is then one framed stdin line (Send)
and one Receive that returns with the answer and its end frame: 2 requests per operation on a
warm connection, no powershell.exe start, no command-line limit. A Receive that ends because of
OperationTimeout is simply repeated until the call's deadline; a call that overruns its deadline
terminates the host (Signal terminate) and raises `InfrastructureError`, and the next call starts
a new one, as does any call after a reboot, `reconnect()` or a dropped connection. `run` (native
command lines) keeps its own Command per call.

Per-call PowerShell (`persistent_powershell=False`, the fallback): a script whose
`-EncodedCommand` line fits cmd.exe's 8191-character limit is sent that way (3 requests). A
longer script is fed through stdin to `powershell.exe -NoProfile -NonInteractive -Command -`
(Send requests of <= 48 KiB): unlike
`WINRS_SKIP_CMD_SHELL`, which only raises the limit to CreateProcess's 32767 characters (about a
12,000-character script once UTF-16LE + base64 encoded), stdin has no size limit. The shell uses
codepage 65001, so scripts and output travel as UTF-8. WinRM has no file channel: files go to the
host through the `file_write` Windows operation (`harness.windows.actions.upload_file`).

>>> shell = WinRMShell(WinRMSettings("https://dut-01:5986/wsman", "lab\\\\tester", pw,
...                                  auth=WinRMAuth.BASIC, ca_file=Path("ca.pem")))   # doctest: +SKIP
>>> shell.run_powershell("Write-Output 'hi'", timeout_s=60).stdout                     # doctest: +SKIP
'hi\\r\\n'
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from winrm import transport as winrm_transport
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from harness.errors import ConfigError, InfrastructureError
from harness.remote.base import CommandResult
from harness.remote.deadline import Deadline
from harness.remote.powershell import invocation
from harness.remote.shell_core import TransportShell
from harness.remote.transcript import Transcript
from harness.remote.winrm_ps_host import WinRMHostedPowerShell

log = logging.getLogger(__name__)

STDIN_CHUNK = 48 * 1024
MAX_POLL_S = 20  # WS-Man OperationTimeout per Receive, at most
TERMINATE_GRACE_S = 5.0  # budget for Signal terminate / Delete after the deadline
#: Commands one shell runs before it is replaced: Windows counts every Command of a shell's life
#: against MaxConcurrentOperationsPerUser (default 1500; Signal terminate gives none back,
#: MS-WSMV <118>) and faults 2150859174 past it. Well under, for hardened hosts.
RECYCLE_AFTER_COMMANDS = 500
#: Faults on a Command after which nothing ran and a new shell is worth one retry: the quota,
#: and the shell deleted by the server (IdleTimeOut expired, service restarted).
QUOTA_FAULT, SHELL_GONE_FAULT = 2150859174, 2150858843


class WinRMAuth(str, enum.Enum):
    NTLM = "ntlm"  # default; message encryption over HTTP
    KERBEROS = "kerberos"  # needs pywinrm[kerberos]
    CREDSSP = "credssp"  # needs pywinrm[credssp]
    BASIC = "basic"  # HTTPS only, unless allow_unencrypted


@dataclass(frozen=True)
class WinRMSettings:
    url: str
    username: str
    password: str = field(repr=False)
    auth: WinRMAuth = WinRMAuth.NTLM
    ca_file: Path | None = None  # the lab CA for HTTPS; None = system trust store
    allow_unencrypted: bool = False

    @property
    def https(self) -> bool:
        return self.url.lower().startswith("https://")


class WinRMShell(WinRMHostedPowerShell, TransportShell):
    """`RemoteShell` over WinRM. Not for concurrent use from several threads (calls serialise)."""

    def __init__(
        self,
        settings: WinRMSettings,
        *,
        transcript: Transcript | None = None,
        secrets: Sequence[str] = (),
        protocol_factory: Callable[..., Protocol] = Protocol,
        persistent_powershell: bool = True,
        recycle_after: int = RECYCLE_AFTER_COMMANDS,
    ) -> None:
        self.settings = settings
        self._init_shell(
            transcript=transcript,
            secrets=(settings.password, *secrets),
            persistent_powershell=persistent_powershell,
        )
        self.recycle_after = recycle_after
        self._commands_in_shell = 0  # Commands started in the current shell
        self.warnings: list[str] = []
        if settings.auth is WinRMAuth.BASIC and not settings.https:
            if not settings.allow_unencrypted:
                raise ConfigError(
                    f"Basic authentication over plain HTTP ({settings.url}) would send the "
                    "password and every command in clear text; use HTTPS, NTLM, or set "
                    "allow_unencrypted"
                )
            self.warnings.append(
                f"Basic authentication over unencrypted HTTP to {settings.url}: "
                "credentials and commands travel in clear text"
            )
        extra = {WinRMAuth.KERBEROS: "kerberos", WinRMAuth.CREDSSP: "credssp"}.get(settings.auth)
        if extra and not getattr(winrm_transport, f"HAVE_{extra.upper()}", False):
            raise ConfigError(
                f"WinRM auth {extra!r} needs the optional client libraries: "
                f"pip install 'pywinrm[{extra}]'"
            )
        self._factory = protocol_factory
        self._proto: Protocol | None = None
        self._shell_id: str | None = None
        self._host_id: str | None = None  # CommandId of the persistent PowerShell host

    # -- TransportShell --------------------------------------------------------------------------
    def _run_native(self, command: str, args: list[str], shown: str, dl: Deadline) -> CommandResult:
        return self._execute(command, args, None, shown, dl)

    def _run_per_call(self, script: str, dl: Deadline) -> CommandResult:
        inv = invocation(script)
        return self._execute(inv.command_line, [], inv.stdin, inv.shown, dl)

    # -- RemoteShell -----------------------------------------------------------------------------
    def reconnect(self, *, timeout_s: float = 30.0) -> None:
        """Forget the old connection and shell (e.g. after a reboot) and open new ones."""
        with self._lock:
            self._drop()
            dl = Deadline.after(timeout_s, f"a new WinRM shell on {self.settings.url}")
            self._open(dl)

    def close(self) -> None:
        with self._lock:
            proto, shell_id = self._proto, self._shell_id
            if proto is not None and shell_id is not None:
                try:
                    self._set_timeouts(Deadline.after(TERMINATE_GRACE_S, "shell deletion"))
                    proto.close_shell(shell_id)
                except Exception as exc:  # closing is best effort; the host may be gone
                    log.info(
                        "closing WinRM shell on %s failed: %s",
                        self.settings.url,
                        type(exc).__name__,
                    )
            self._drop()

    def __enter__(self) -> WinRMShell:
        return self

    # -- internals -------------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return self.settings.url

    def _drop(self) -> None:
        if self._proto is not None:
            with contextlib.suppress(Exception):
                self._proto.transport.close_session()
        self._proto, self._shell_id, self._host_id = None, None, None
        self._commands_in_shell = 0

    def _start_command(
        self, dl: Deadline, command: str, args: list[str], doing: str
    ) -> tuple[Protocol, str, str]:
        """(protocol, shell id, command id) of a new Command: in a shell that is replaced before
        it reaches the operations quota, and once more in a new shell when the server faults
        the Command with the quota or a deleted shell (nothing ran then)."""
        if self._proto is not None and self._commands_in_shell >= self.recycle_after:
            self._recycle(dl)
        for attempt in (1, 2):
            if self._proto is None or self._shell_id is None:
                self._open(dl)
            proto, shell_id = self._proto, self._shell_id
            assert proto is not None and shell_id is not None
            try:
                with self._translate(dl, doing):
                    self._set_timeouts(dl)
                    # stdin a pipe, never a console (whose lines stop at 254 characters):
                    # MS-WSMV 3.1.4.11 WINRS_CONSOLEMODE_STDIN; docs/windows-operations.md
                    command_id = proto.run_command(
                        shell_id, command, args, console_mode_stdin=False
                    )
            except InfrastructureError as exc:
                cause = exc.__cause__
                code = getattr(cause, "wsman_fault_code", None)
                if attempt == 1 and code in (QUOTA_FAULT, SHELL_GONE_FAULT):
                    log.info("WinRM fault %s on a Command: a new shell, once", code)
                    continue  # _translate dropped the shell
                raise
            self._commands_in_shell += 1
            return proto, shell_id, command_id
        raise AssertionError("unreachable")  # pragma: no cover

    def _recycle(self, dl: Deadline) -> None:
        """Delete the current shell (and the persistent host in it) and forget it."""
        proto, shell_id = self._proto, self._shell_id
        if proto is not None and shell_id is not None:
            try:
                self._set_timeouts(dl.child(TERMINATE_GRACE_S, "shell recycling"))
                proto.close_shell(shell_id)
            except Exception as exc:  # best effort: the next Create does not depend on it
                log.info("deleting a used WinRM shell failed: %s", type(exc).__name__)
        self._drop()

    def _open(self, dl: Deadline) -> tuple[Protocol, str]:
        s = self.settings
        transport = s.auth.value
        if s.auth is WinRMAuth.BASIC:
            transport = "ssl" if s.https else "basic"
        kwargs: dict[str, Any] = {
            "endpoint": s.url,
            "transport": transport,
            "username": s.username,
            "password": s.password,
            "read_timeout_sec": MAX_POLL_S + 10,
            "operation_timeout_sec": MAX_POLL_S,
            "proxy": None,
        }
        # Always validate; trust exactly the lab CA when given (never the environment's bundle).
        kwargs["server_cert_validation"] = "validate"
        kwargs["ca_trust_path"] = str(s.ca_file) if s.https and s.ca_file else None
        with self._translate(dl, "opening the WinRM shell"):
            proto = self._factory(**kwargs)
            self._proto = proto
            self._set_timeouts(dl)
            self._shell_id = proto.open_shell(codepage=65001)
        return proto, self._shell_id

    def _set_timeouts(self, dl: Deadline, *, receive: bool = False) -> None:
        """OperationTimeout (whole seconds, >= 1) and the HTTP read timeout for the next request."""
        assert self._proto is not None
        dl.check()
        remaining = dl.remaining()
        poll = max(1, min(MAX_POLL_S, int(remaining)))
        self._proto.operation_timeout_sec = poll
        # A Receive may legitimately be held for `poll` seconds by the server.
        self._proto.transport.read_timeout_sec = poll + 2 if receive else max(0.2, remaining)  # type: ignore[assignment]

    @contextlib.contextmanager
    def _translate(self, dl: Deadline, doing: str) -> Iterator[None]:
        """Turn every transport failure into InfrastructureError naming the host and the step."""
        where = f"{doing} on {self.settings.url}"
        try:
            yield
        except InfrastructureError:
            raise
        except requests.exceptions.SSLError as exc:
            self._drop()
            raise InfrastructureError(f"TLS certificate validation failed {where}: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            self._drop()
            raise dl.error(f"no answer in time while {where}") from exc
        except requests.exceptions.ConnectionError as exc:
            self._drop()
            raise InfrastructureError(f"cannot connect while {where}: {exc}") from exc
        except (InvalidCredentialsError, PermissionError) as exc:
            # requests_ntlm raises PermissionError ("Access denied: Server did not respond with
            # NTLM challenge token") when the server rejects the logon.
            self._drop()
            raise InfrastructureError(
                f"authentication as {self.settings.username!r} ({self.settings.auth.value}) "
                f"was rejected while {where}"
            ) from exc
        except WinRMOperationTimeoutError as exc:
            # the server's w:TimedOut fault (2150858793) on a request other than a Receive (the
            # Receive loops catch it first): a busy host answers a Send so, after taking some
            # or all of its data. pywinrm's exception is not a WinRMError. The shell, and the
            # persistent host in it with a possibly half-written line, are forgotten.
            self._drop()
            raise InfrastructureError(
                f"WS-Management fault 2150858793 (w:TimedOut: the server did not finish in "
                f"time) while {where}; the shell is replaced"
            ) from exc
        except WSManFaultError as exc:
            self._drop()  # e.g. shell not found after a reboot: the next call re-opens
            raise InfrastructureError(
                f"WS-Management fault {exc.wsman_fault_code} while {where}: {exc.reason}"
            ) from exc
        except WinRMTransportError as exc:
            self._drop()
            raise InfrastructureError(f"HTTP {exc.code} while {where}") from exc
        except (WinRMError, requests.exceptions.RequestException, AssertionError) as exc:
            self._drop()
            raise InfrastructureError(
                f"WinRM error while {where}: {type(exc).__name__}: {exc}"
            ) from exc

    def _execute(
        self, command: str, args: list[str], stdin: bytes | None, shown: str, dl: Deadline
    ) -> CommandResult:
        return self._recorded(
            shown, lambda out, err: self._execute_locked(command, args, stdin, dl, out, err)
        )

    def _execute_locked(
        self,
        command: str,
        args: list[str],
        stdin: bytes | None,
        dl: Deadline,
        out: list[bytes],
        err: list[bytes],
    ) -> int:
        proto, shell_id, command_id = self._start_command(dl, command, args, "starting the command")
        try:
            if stdin is not None:
                with self._translate(dl, "sending stdin"):
                    pieces = [stdin[i : i + STDIN_CHUNK] for i in range(0, len(stdin), STDIN_CHUNK)]
                    for i, piece in enumerate(pieces):
                        self._set_timeouts(dl)
                        proto.send_command_input(
                            shell_id, command_id, piece, end=i == len(pieces) - 1
                        )
            rc = self._collect(proto, shell_id, command_id, dl, out, err)
        except InfrastructureError:
            if dl.expired and self._proto is not None:
                self._terminate(proto, shell_id, command_id)
            raise
        with self._translate(dl, "releasing the finished command"):
            self._set_timeouts(Deadline.after(TERMINATE_GRACE_S, "Signal terminate"))
            proto.cleanup_command(shell_id, command_id)
        return rc

    def _collect(
        self,
        proto: Protocol,
        shell_id: str,
        command_id: str,
        dl: Deadline,
        out: list[bytes],
        err: list[bytes],
    ) -> int:
        while True:
            if dl.expired:
                raise dl.error(
                    "the command was still running; it is terminated on the host (Signal terminate)"
                )
            with self._translate(dl, "receiving output"):
                self._set_timeouts(dl, receive=True)
                try:
                    o, e, rc, done = proto.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    continue  # no output within one poll period
            out.append(o)
            err.append(e)
            if done:
                return rc

    def _terminate(self, proto: Protocol, shell_id: str, command_id: str) -> None:
        try:
            self._set_timeouts(Deadline.after(TERMINATE_GRACE_S, "Signal terminate"))
            proto.cleanup_command(shell_id, command_id)
        except Exception as exc:  # the deadline error is what the caller needs to see
            log.warning(
                "could not terminate command on %s: %s", self.settings.url, type(exc).__name__
            )
