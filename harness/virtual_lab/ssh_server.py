"""The virtual lab's SSH listener: a Windows OpenSSH server, via asyncssh.

One asyncssh server per DUT on its own event loop in a background thread, on 127.0.0.1 with
TCP_NODELAY on every accepted connection. Password and public-key authentication. An exec
request is what Windows OpenSSH does with it (`ssh_processes`): the line runs under the DUT's
DefaultShell (`default_shell()`, cmd.exe when None: `"cmd.exe" /c "<line>"`, the quotes counted
toward cmd.exe's 8191 characters; a PowerShell DefaultShell runs the line as PowerShell), as a
process in the endpoint's `processes` table that **outlives its channel** (Win32-OpenSSH#1751)
until it exits or `taskkill /PID n /T /F` ends it; `stop()` ends them all. Per-call PowerShell
stdout is in the OEM code page (quirk `locale`/`oem_codepage`, cp437 by default) unless the
script set UTF-8 first; the exit code travels as the uint32 Windows reports; with the quirk
`ssh_eof_withheld` (Win32-OpenSSH#2452: a grandchild holds the pipes) the exit status comes but
EOF never does; with `ps_host_blocked` the harness's persistent host cannot start. stdin is forwarded until EOF. SFTP is `ssh_sftp` (NTFS naming rules, rooted in
a per-DUT directory `sftp_root`). Faults: `refuse()` stops accepting (new connections are
refused, open ones live on; `accept()` listens again on the same port) and `drop_next()` aborts
the connection of the next exec once the command has started, or of the next request a running
persistent PowerShell host receives (the process runs on, as on Windows);
`reject_auth = True` fails every authentication until cleared. asyncssh's
own INFO log would print command lines, so its logger is raised to WARNING unless configured.

>>> with SshEndpoint(BuiltinExecutor(), "tester", "s3cret", host_key_dir=tmp) as ep:  # doctest: +SKIP
...     ep.port, ep.known_hosts_path.read_text()
(40123, '[127.0.0.1]:40123 ssh-ed25519 AAAA...\\n')
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import hmac
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from harness.virtual_lab.service import Service
from harness.virtual_lab.ssh_keys import HostKey
from harness.virtual_lab.ssh_processes import (
    ExecSpawner,
    LabProcess,
    ProcessTable,
    StdinPrologue,
    oem_codepage,
)
from harness.virtual_lab.ssh_sftp import LabSftp, _account, windows_to_local
from harness.virtual_lab.winrm.executor import Executor, RunningCommand
from harness.virtual_lab.winrm.ps_host import PsHostLoop

__all__ = ["LOOPBACK", "SshEndpoint", "windows_to_local"]
log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
_WAIT_SLICE_S = 0.25  # a running command re-checks for a closed channel at least this often


class _LabSshServer(asyncssh.SSHServer):
    def __init__(self, endpoint: SshEndpoint) -> None:
        self._ep = endpoint
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        sock = conn.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ep._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._ep._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        if self._ep.reject_auth:
            return False
        ok_user = _account(username) == _account(self._ep.username)
        ok_pw = hmac.compare_digest(password.encode(), self._ep._password.encode())
        return ok_user and ok_pw

    def public_key_auth_supported(self) -> bool:
        return bool(self._ep._authorized)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._ep.reject_auth:
            return False
        return _account(username) == _account(self._ep.username) and (
            key.public_data in self._ep._authorized
        )


class SshEndpoint(Service):
    """An SSH service on 127.0.0.1 for one account, backed by `executor`.

    `host_key_dir` keeps the DUT's host key (and `known_hosts`); `sftp_root` (default
    `<host_key_dir>/fs`) is the DUT's file system as SFTP sees it. `port=0` picks a free port;
    pass the old port to "reboot" in place.
    """

    def __init__(
        self,
        executor: Executor,
        username: str,
        password: str,
        *,
        authorized_keys: Sequence[str] = (),
        host_key_dir: Path,
        sftp_root: Path | None = None,
        port: int = 0,
        default_shell: Callable[[], str | None] = lambda: None,
        quirks: dict[str, str | int | bool] | None = None,
    ) -> None:
        self.executor = executor
        self.quirks = dict(quirks or {})
        #: `ssh_eof_withheld` quirk (Win32-OpenSSH#2452): exit-status is sent, EOF never.
        self.withhold_eof = bool(self.quirks.get("ssh_eof_withheld", False))
        self.processes = ProcessTable()
        self._spawner = ExecSpawner(
            executor,
            self.processes,
            default_shell,
            lambda: oem_codepage(self.quirks),
            host_blocked=lambda: bool(self.quirks.get("ps_host_blocked", False)),
        )
        self.username = username
        self._password = password
        self._authorized = {asyncssh.import_public_key(k).public_data for k in authorized_keys}
        self.host_key_dir = Path(host_key_dir)
        self.sftp_root = Path(sftp_root) if sftp_root is not None else self.host_key_dir / "fs"
        self._requested_port = port
        self.port = 0
        self._host_key: HostKey | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._drop_next = False
        self._fault_lock = threading.Lock()
        self.reject_auth = False  # fault: every authentication fails until set back to False
        self.execs_total = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> SshEndpoint:
        if self._loop is not None:
            return self
        self._host_key = HostKey.ensure(self.host_key_dir)
        (self.sftp_root / "C" / "Users" / _account(self.username)).mkdir(
            parents=True, exist_ok=True
        )
        asyncssh_log = logging.getLogger("asyncssh")
        if asyncssh_log.level == logging.NOTSET:
            asyncssh_log.setLevel(logging.WARNING)  # its INFO log prints command lines
        self._pool = concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="ssh-cmd")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="ssh-dut", daemon=True)
        self._thread.start()
        try:
            self._call(self._listen(self._requested_port), timeout_s)
        except BaseException:
            self.stop()
            raise
        self.port = self._acceptor.get_port() if self._acceptor else 0
        self._requested_port = self.port  # accept() after refuse() reuses it
        self.known_hosts_path.write_text(
            self._host_key.known_hosts_line(LOOPBACK, self.port) + "\n", encoding="ascii"
        )
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the listener, abort every connection, end every command; idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        if not loop.is_running():
            loop.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- faults ---------------------------------------------------------------------------------
    def refuse(self, timeout_s: float = 5.0) -> None:
        """Stop accepting: new connections are refused; open connections go on."""
        self._call(self._unlisten(), timeout_s)

    def accept(self, timeout_s: float = 5.0) -> None:
        """Listen again (same port) after `refuse()`."""
        self._call(self._listen(self.port), timeout_s)

    def drop_next(self, armed: bool = True) -> None:
        """Abort the connection of the next exec, once its command has started (one-shot);
        `armed=False` cancels it."""
        with self._fault_lock:
            self._drop_next = armed

    # -- facts ----------------------------------------------------------------------------------
    @property
    def known_hosts_path(self) -> Path:
        return self.host_key_dir / "known_hosts"

    @property
    def host_key(self) -> HostKey:
        if self._host_key is None:
            self._host_key = HostKey.ensure(self.host_key_dir)
        return self._host_key

    @property
    def connections_open(self) -> int:
        return len(self._connections)

    # -- internals ------------------------------------------------------------------------------
    def _call(self, coro: Any, timeout_s: float) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the SSH endpoint is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def _listen(self, port: int) -> None:
        if self._acceptor is not None:
            return
        assert self._host_key is not None
        root = self.sftp_root
        self._acceptor = await asyncssh.create_server(
            lambda: _LabSshServer(self),
            LOOPBACK,
            port,
            server_host_keys=[self._host_key.key],
            process_factory=self._serve_exec,
            sftp_factory=lambda chan: LabSftp(chan, root),
            allow_scp=False,
            encoding=None,
            reuse_address=True,
            keepalive_interval=0,
        )

    async def _unlisten(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()

    async def _shutdown(self) -> None:
        await self._unlisten()
        self.processes.terminate_all()  # the machine goes down with every process
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()
        await asyncio.get_running_loop().shutdown_default_executor()  # asyncssh's DNS lookups

    def _take_drop(self) -> bool:
        with self._fault_lock:
            drop, self._drop_next = self._drop_next, False
            return drop

    async def _serve_exec(self, proc: asyncssh.SSHServerProcess[bytes]) -> None:
        line = proc.command
        if line is None:
            proc.stderr.write(b"Interactive shells are not simulated; send a command.\r\n")
            proc.exit(1)
            return
        self.execs_total += 1
        child = self._spawner.spawn(line)
        if child.report_pid:
            proc.stdout.write(child.pid_line().encode("ascii"))
        pump = asyncio.ensure_future(self._pump_stdin(proc, child, self._drop_check(child)))
        try:
            if self._take_drop():
                proc.channel.get_connection().abort()
                child.detached = True  # the process runs on (Win32-OpenSSH#1751)
            rc = await self._relay(proc, child)
            if rc is not None and not child.detached:
                await self._exit(proc, rc)
        finally:
            pump.cancel()
            self.processes.remove(child)

    async def _exit(self, proc: asyncssh.SSHServerProcess[bytes], rc: int) -> None:
        """exit-status as the uint32 Windows sends (asyncssh's `exit` would keep 8 bits), then
        EOF and close, or, with the `ssh_eof_withheld` quirk, neither until the client closes."""
        chan = proc.channel
        with contextlib.suppress(OSError, asyncssh.Error):
            chan._send_request(b"exit-status", (rc & 0xFFFFFFFF).to_bytes(4, "big"))
            if self.withhold_eof:
                await chan.wait_closed()  # a grandchild holds the pipes: no EOF ever comes
                return
            chan.close()

    async def _relay(self, proc: asyncssh.SSHServerProcess[bytes], child: LabProcess) -> int:
        """Stream output until the command exits (its code). If the channel goes away first
        the process runs on, its output discarded, until it exits or is killed."""
        loop = asyncio.get_running_loop()
        running = child.command
        while True:
            out = running.poll()
            if not child.detached:
                try:
                    if out.stdout:
                        proc.stdout.write(out.stdout.encode(child.encoding, "replace"))
                    if out.stderr:
                        proc.stderr.write(out.stderr.encode(child.encoding, "replace"))
                except (BrokenPipeError, ConnectionError, asyncssh.Error):
                    child.detached = True
            if out.exit_code is not None:
                return out.exit_code
            if self._loop is None:
                running.terminate()
            elif proc.is_closing():
                child.detached = True
            await loop.run_in_executor(self._pool, running.wait, _WAIT_SLICE_S)

    def _drop_check(self, child: LabProcess) -> Callable[[], bool]:
        """For a persistent host: whether the request now arriving is to be dropped (fault)."""
        if isinstance(getattr(child.command, "inner", child.command), PsHostLoop):
            return self._take_drop
        return lambda: False

    @staticmethod
    async def _pump_stdin(
        proc: asyncssh.SSHServerProcess[bytes],
        child: LabProcess,
        drop: Callable[[], bool],
    ) -> None:
        running: RunningCommand = child.command
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        prologue = StdinPrologue(child)

        def take(text: str, final: bool) -> str:
            rest, utf8, report = prologue.feed(text, final=final)
            if utf8:
                child.encoding = "utf-8"
            if report and not proc.is_closing():
                proc.stdout.write(child.pid_line().encode("ascii"))
            return rest

        try:
            while True:
                data = await proc.stdin.read(65536)
                if not data:
                    break
                running.write_stdin(take(decoder.decode(data), False), end=False)
                if drop():  # fault: the operation has started, then the connection goes away
                    proc.channel.get_connection().abort()
                    child.detached = True
                    break
        except Exception:  # break/signal/closed channel: stdin simply ends
            pass
        finally:
            running.write_stdin(take(decoder.decode(b"", final=True), True), end=True)
