"""SSH transport (paramiko): ONE connection reused across calls, over a socket WE create.

paramiko never sets TCP_NODELAY; Nagle plus delayed ACK then stalls every exchange by ~40 ms.
So the connection runs over `socket.create_connection(...)` with TCP_NODELAY, passed as
`sock=`. Host keys are checked against the lab's known_hosts file with a *rejecting* policy
(never AutoAdd): an unknown or changed key raises `InfrastructureError` that prints the
fingerprint and how to trust it. Every call has a deadline: the channel is polled against it
and, on expiry, closed. Closing it does NOT end the process on Windows OpenSSH
(Win32-OpenSSH#1751), so a powershell.exe the transport started (which prints its PID first,
`harness.remote.ssh_exec`) is then ended with `taskkill /PID n /T /F` over a fresh channel
(`harness.remote.ssh_channel`: its own deadline, recorded in the transcript) before
`InfrastructureError`; a native `run()` reports no PID and is left running. A command whose
exit status came but whose EOF never does (Win32-OpenSSH#2452) is accepted after a short grace.

The host is a Windows OpenSSH server. Every line is run as `cmd.exe /c <line>` whatever its
DefaultShell (a probe per connection, `ssh_exec.SHELL_PROBE`, decides whether `; exit
$LASTEXITCODE` must follow for a PowerShell DefaultShell), and a line is kept within
`CMD_LINE_BUDGET` (8000 of cmd.exe's 8191 characters: sshd adds quotes). `run_powershell`
(default, `persistent_powershell=True`) writes the script as one framed line to ONE persistent
PowerShell host per connection, an exec channel kept open (`harness.remote.ssh_ps_host`,
`harness.remote.ps_host`): no powershell.exe start and no channel set-up per call, no size
limit; a host that cannot start (it ends before its first statement) switches this shell to
per call for good, with a transcript entry. With `persistent_powershell=False` (one
powershell.exe per call) each script first sets UTF-8 output (the console's OEM code page
otherwise) and prints its PID, and goes as `-EncodedCommand` when that fits, else through stdin
to `powershell.exe -NoProfile -NonInteractive -Command -` as one statement that runs it whole
(`harness.remote.powershell`): no temp file to create and clean up, no execution policy to
bypass, the same route as the WinRM transport. Exit codes are reported as Windows' signed
32-bit values.

Uploads go over SFTP (`C:\\x\\y` is sent as `/C:/x/y`, which Windows OpenSSH understands); the
SHA-256 of the local file is compared with a hash of the remote file read back over SFTP (the
virtual lab's built-in executor has no `Get-FileHash`; read-back works on every SFTP server).

>>> shell = SshShell(SshSettings("dut-01", 22, "lab\\\\tester", known_hosts=Path("kh"),
...                              password=pw))                                  # doctest: +SKIP
>>> shell.run("hostname", timeout_s=30).stdout                                 # doctest: +SKIP
'DUT-01\\r\\n'
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging
import posixpath
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from harness.errors import InfrastructureError
from harness.remote.base import CommandResult, call_deadline
from harness.remote.deadline import Deadline
from harness.remote.powershell import invocation
from harness.remote.sftp_files import makedirs, remote_sha256, windows_sftp_path
from harness.remote.shell_core import TransportShell
from harness.remote.ssh_channel import SshChannels, without_pid
from harness.remote.ssh_exec import PER_CALL_PROLOGUE, PidReader
from harness.remote.ssh_ps_host import SshHostedPowerShell
from harness.remote.transcript import Transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SshSettings:
    host: str
    port: int
    username: str
    known_hosts: Path
    password: str | None = field(default=None, repr=False)  # resolved by the caller
    key_filename: Path | None = None
    connect_timeout_s: float = 15.0

    @property
    def host_key_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _fingerprint(key: paramiko.PKey) -> str:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class _RejectAndRecord(paramiko.MissingHostKeyPolicy):
    """Reject like RejectPolicy, but remember the offered key for the error message."""

    def __init__(self) -> None:
        self.offered: paramiko.PKey | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.offered = key
        raise paramiko.SSHException(f"Server {hostname!r} not found in known_hosts")


class SshShell(SshChannels, SshHostedPowerShell, TransportShell):
    """`RemoteShell` over SSH. Not for concurrent use from several threads (calls serialise)."""

    #: `upload` reads the file back over SFTP and compares SHA-256 itself.
    verifies_uploads = True

    def __init__(
        self,
        settings: SshSettings,
        *,
        transcript: Transcript | None = None,
        secrets: Sequence[str] = (),
        persistent_powershell: bool = True,
    ) -> None:
        self.settings = settings
        self._init_shell(
            transcript=transcript,
            secrets=(settings.password or "", *secrets),
            persistent_powershell=persistent_powershell,
        )
        self._host_chan: paramiko.Channel | None = None
        self._host_pids = PidReader()
        self._cmd_shell: bool | None = None  # DefaultShell is cmd.exe (probed per connection)
        self._client: paramiko.SSHClient | None = None
        self._sock: socket.socket | None = None

    # -- TransportShell --------------------------------------------------------------------------
    def _run_native(self, command: str, args: list[str], shown: str, dl: Deadline) -> CommandResult:
        return self._execute(shown, None, shown, dl)

    def _run_per_call(self, script: str, dl: Deadline) -> CommandResult:
        inv = invocation(script, prologue=PER_CALL_PROLOGUE)
        return self._execute(inv.command_line, inv.stdin, inv.shown, dl, reports_pid=True)

    # -- RemoteShell -----------------------------------------------------------------------------
    def upload(
        self, local: Path, remote: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> None:
        """SFTP put (parent folders created), then a SHA-256 check of the file read back."""
        dl = call_deadline(timeout_s, deadline, f"upload of {local.name} to {remote}")
        target = windows_sftp_path(remote)
        started = time.monotonic()
        want = hashlib.sha256(Path(local).read_bytes()).hexdigest()
        shown = f"sftp put {local} -> {remote}"
        try:
            with self._lock, self._translate(dl, f"uploading {local.name}"):
                sftp = self._connected(dl).open_sftp()
                try:
                    sftp.get_channel().settimeout(max(0.1, dl.remaining()))
                    makedirs(sftp, posixpath.dirname(target))
                    sftp.put(str(local), target, callback=lambda _done, _total: dl.check())
                    got = remote_sha256(sftp, target, dl)
                    if got != want:
                        with contextlib.suppress(OSError):
                            sftp.remove(target)
                        raise InfrastructureError(
                            f"upload of {local} to {remote} on {self.settings.host_key_name} "
                            f"is corrupt: SHA-256 {got} on the host, {want} locally"
                        )
                finally:
                    sftp.close()
        except InfrastructureError as exc:
            self.transcript.record(
                shown,
                exit_code=None,
                stdout="",
                stderr="",
                duration_s=time.monotonic() - started,
                error=str(exc),
            )
            raise
        self.transcript.record(
            shown,
            exit_code=0,
            stdout=f"sha256 {want} verified\n",
            stderr="",
            duration_s=time.monotonic() - started,
        )

    def reconnect(self, *, port: int | None = None, timeout_s: float = 30.0) -> None:
        """Drop the connection and open a new one (after a reboot; `port` if it moved)."""
        with self._lock:
            self._drop()
            if port is not None:
                self.settings = dataclasses.replace(self.settings, port=port)
            dl = Deadline.after(timeout_s, f"an SSH connection to {self.settings.host_key_name}")
            with self._translate(dl, "connecting"):
                self._connect(dl)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> SshShell:
        return self

    @property
    def _where(self) -> str:
        return self.settings.host_key_name

    @property
    def socket(self) -> socket.socket | None:
        """The TCP socket of the current connection (to check its options)."""
        return self._sock

    # -- connection ------------------------------------------------------------------------------
    def _connected(self, dl: Deadline) -> paramiko.SSHClient:
        client = self._client
        transport = client.get_transport() if client is not None else None
        if client is None or transport is None or not transport.is_active():
            self._drop()
            client = self._connect(dl)
        return client

    def _connect(self, dl: Deadline) -> paramiko.SSHClient:
        s = self.settings
        dl.check()
        budget = max(0.1, min(dl.remaining(), s.connect_timeout_s))
        sock = socket.create_connection((s.host, s.port), timeout=budget)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        policy = _RejectAndRecord()
        try:
            if s.known_hosts.exists():
                client.load_host_keys(str(s.known_hosts))
            client.set_missing_host_key_policy(policy)
            client.connect(
                s.host,
                s.port,
                username=s.username,
                password=s.password,
                key_filename=str(s.key_filename) if s.key_filename else None,
                sock=sock,
                timeout=budget,
                banner_timeout=budget,
                auth_timeout=budget,
                channel_timeout=budget,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            sock.close()
            raise InfrastructureError(
                f"the SSH host key of {s.host_key_name} CHANGED: {s.known_hosts} expects "
                f"{exc.expected_key.get_name()} {_fingerprint(exc.expected_key)}, the host offers "
                f"{exc.key.get_name()} {_fingerprint(exc.key)}. If the DUT was reinstalled, check "
                "the new fingerprint on the DUT (ssh-keygen -lf "
                "C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub), remove the old entry "
                f"(ssh-keygen -R '{s.host_key_name}' -f {s.known_hosts}) and trust the new one "
                f"({self._keyscan_hint()}); otherwise suspect a man in the middle"
            ) from exc
        except paramiko.SSHException as exc:
            client.close()
            sock.close()
            if policy.offered is not None:
                k = policy.offered
                raise InfrastructureError(
                    f"the SSH host key of {s.host_key_name} is not in {s.known_hosts}: the host "
                    f"offers {k.get_name()} {_fingerprint(k)}. After checking that fingerprint on "
                    "the DUT (ssh-keygen -lf C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub), "
                    f"trust it with: {self._keyscan_hint()}"
                ) from exc
            raise
        except BaseException:
            client.close()
            sock.close()
            raise
        self._client, self._sock = client, sock
        return client

    def _keyscan_hint(self) -> str:
        s = self.settings
        return f"ssh-keyscan -t ed25519 -p {s.port} {s.host} >> {s.known_hosts}"

    def _drop(self) -> None:
        self._close_host()
        self._cmd_shell = None
        client, self._client, self._sock = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    @contextlib.contextmanager
    def _translate(self, dl: Deadline, doing: str) -> Iterator[None]:
        """Every transport failure becomes InfrastructureError naming the host and the step."""
        where = f"{doing} on {self.settings.host_key_name}"
        try:
            yield
        except InfrastructureError:
            raise
        except paramiko.AuthenticationException as exc:
            self._drop()
            how = (
                "key " + str(self.settings.key_filename)
                if self.settings.key_filename
                else "password"
            )
            raise InfrastructureError(
                f"SSH authentication as {self.settings.username!r} ({how}) was rejected while {where}"
            ) from exc
        except TimeoutError as exc:
            self._drop()
            raise dl.error(f"no answer in time while {where}") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop()
            raise InfrastructureError(
                f"SSH error while {where}: {type(exc).__name__}: {exc}"
            ) from exc

    # -- commands --------------------------------------------------------------------------------
    def _execute(
        self,
        line: str,
        stdin: bytes | None,
        shown: str,
        dl: Deadline,
        *,
        reports_pid: bool = False,
    ) -> CommandResult:
        def body(out: list[bytes], err: list[bytes]) -> int:
            with self._translate(dl, "running a command"):
                return self._execute_locked(line, stdin, dl, out, err, reports_pid)

        return self._recorded(shown, body, stdout_of=lambda out: without_pid(out, reports_pid))

    def _execute_locked(
        self,
        line: str,
        stdin: bytes | None,
        dl: Deadline,
        out: list[bytes],
        err: list[bytes],
        reports_pid: bool,
    ) -> int:
        client = self._connected(dl)
        exec_line = self._exec_line(client, line, dl)
        try:
            return self._run_channel(client, exec_line, stdin, dl, out, err)
        except InfrastructureError as exc:
            if not (reports_pid and dl.expired):
                raise
            reader = PidReader()
            reader.feed(b"".join(out))
            note = self._end_process(reader.pid, "the command")
            raise InfrastructureError(f"{exc}; {note}") from exc

    def _lost(self, why: str) -> InfrastructureError:
        self._drop()
        return InfrastructureError(
            f"the SSH connection to {self.settings.host_key_name} was lost before "
            f"the command ended ({why})"
        )
