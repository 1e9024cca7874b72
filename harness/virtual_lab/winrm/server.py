"""The virtual lab's WinRM listener: WS-Management over HTTP/1.1 (keep-alive), HTTP or HTTPS.

One thread per TCP connection (NTLM is per connection), TCP_NODELAY on every accepted socket,
TLS handshakes in the connection's thread (a slow client never blocks the accept loop). What
commands do is the `executor`'s business. Message bodies and passwords are never logged.

>>> with WinRMEndpoint(BuiltinExecutor(), "tester", "s3cret", https=False,
...                    allow_unencrypted=False, cert_dir=tmp) as ep:          # doctest: +SKIP
...     winrm.Session(ep.url, ("tester", "s3cret"), transport="ntlm").run_cmd("hostname")
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from spnego.channel_bindings import GssChannelBindings

from harness.virtual_lab.service import Service
from harness.virtual_lab.winrm import crypto
from harness.virtual_lab.winrm.auth import (
    AuthResult,
    ConnectionAuth,
    Credentials,
    Verdict,
    register_ntlm_user,
)
from harness.virtual_lab.winrm.certs import LabPki
from harness.virtual_lab.winrm.executor import Executor
from harness.virtual_lab.winrm.idle import DEFAULT_IDLE_MS
from harness.virtual_lab.winrm.shells import ShellService
from harness.virtual_lab.winrm.wsman import MalformedRequest, parse_request

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
_IDLE_CONNECTION_S = 300.0
_TLS_HANDSHAKE_S = 10.0
_MAX_BODY = 16 * 1024 * 1024
#: WSMan:\localhost\MaxEnvelopeSizekb, Windows' default 500 (KiB): the largest SOAP envelope
MAX_ENVELOPE_BYTES = 500 * 1024


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.soap_requests = 0
        self.connections = 0
        self.actions: Counter[str] = Counter()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, endpoint: WinRMEndpoint, port: int) -> None:
        self.endpoint = endpoint
        self.threads: list[threading.Thread] = []
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _Handler)

    def service_actions(self) -> None:
        """Each turn of the accept loop (every 50 ms at most): shells idle past their
        IdleTimeOut go even when no request comes (their commands are terminated)."""
        try:
            self.endpoint._service.expire_idle()
        except Exception:  # the accept loop must outlive a command that fails to terminate
            log.exception("expiring idle shells")

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"winrm-conn-{client_address[1]}",
            daemon=True,
        )
        with self.sockets_lock:
            self.threads = [th for th in self.threads if th.is_alive()]
            self.threads.append(t)
        t.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = _IDLE_CONNECTION_S
    server: _Server

    def setup(self) -> None:
        ep = self.server.endpoint
        raw: socket.socket = self.request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ep._ssl_ctx is not None:
            raw.settimeout(_TLS_HANDSHAKE_S)
            self.request = ep._ssl_ctx.wrap_socket(raw, server_side=True)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.request)
        with ep._stats.lock:
            ep._stats.connections += 1
        self.auth = ConnectionAuth(
            ep._creds,
            https=ep.https,
            allow_unencrypted=ep.allow_unencrypted,
            channel_bindings=ep._cbt,
        )
        super().setup()

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self, status: int, body: bytes = b"", content_type: str = "", auth: list[str] | None = None
    ) -> None:
        self.send_response(status)
        for value in auth or []:
            self.send_header("WWW-Authenticate", value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        ep = self.server.endpoint
        with ep._stats.lock:
            ep._stats.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(400)
            return
        body = self.rfile.read(length) if length else b""
        if self.path.split("?")[0].lower() != "/wsman":
            self._send(404)
            return
        result = self.auth.check(self.headers.get("Authorization"))
        if ep.reject_auth and result.verdict is Verdict.ALLOW:
            # fault: the credentials are refused (at the end of the handshake, like a wrong
            # password) until the fault is cleared
            self.auth.ntlm_complete = False
            result = AuthResult(Verdict.DENY, self.auth.offers())
        if result.verdict is Verdict.BAD_REQUEST:
            self._send(400)
            return
        if result.verdict is not Verdict.ALLOW:
            self._send(401, auth=result.www_authenticate)
            return
        ctype = self.headers.get("Content-Type", "")
        encrypted = crypto.is_encrypted(ctype)
        ctx = self.auth.context
        if encrypted:
            if ctx is None:
                self._send(400)
                return
            try:
                body = crypto.unseal(ctx, body)
            except crypto.EncryptionError:
                self._send(400)
                return
        elif body and not (ep.https or ep.allow_unencrypted):
            # AllowUnencrypted=false: plaintext SOAP over HTTP is refused.
            self._send(400)
            return
        if not body:
            self._send(200, auth=result.www_authenticate)  # context set-up POST of the clients
            return
        if len(body) > MAX_ENVELOPE_BYTES:
            # WinRM's MaxEnvelopeSizekb (default 500): a larger request is refused with HTTP 413
            # (seen on real hosts, e.g. ansible.windows#391), never half-processed
            self._send(413, auth=result.www_authenticate)
            return
        try:
            req = parse_request(body)
        except MalformedRequest:
            self._send(400)
            return
        answer = ep._service.handle(req, user=result.user, client_ip=self.client_address[0])
        starts_work = req.action.endswith(("/Command", "/Send"))  # Send: a persistent host's op
        if starts_work and ep._take_drop():
            # fault: the command has started, then the connection goes away without an answer
            log.info("dropping the connection during a command (fault)")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            return
        with ep._stats.lock:
            ep._stats.soap_requests += 1
            ep._stats.actions[req.action.rsplit("/", 1)[-1]] += 1
        if encrypted and ctx is not None:
            out, out_type = crypto.seal(ctx, answer.xml)
        else:
            out, out_type = answer.xml, "application/soap+xml;charset=UTF-8"
        self._send(answer.status, out, out_type, auth=result.www_authenticate)


class WinRMEndpoint(Service):
    """A WinRM service on 127.0.0.1 for one account, backed by `executor`.

    `https=True` serves TLS with a certificate from the lab CA in `cert_dir` (`ca_file`);
    `allow_unencrypted=True` accepts Basic and plaintext SOAP over HTTP (WinRM's
    AllowUnencrypted). `cbt_strict` enforces NTLM channel binding over HTTPS
    (CbtHardeningLevel=Strict). `port=0` picks a free port; `start()` after `stop()` listens on
    the same port again ("reboot"). `shell_idle_timeout_ms` is the host's
    `WSMan:\\localhost\\Shell\\IdleTimeout` (Windows' default 7,200,000): a shell idle longer than
    its IdleTimeOut (that, or what the Create asked for; see `idle`) times `time_scale` wall-clock
    seconds is deleted. Faults: `drop_next()`, and `reject_auth = True` answers 401 to every
    request until set back to False.
    """

    def __init__(
        self,
        executor: Executor,
        username: str,
        password: str,
        *,
        https: bool,
        allow_unencrypted: bool,
        cert_dir: Path,
        port: int = 0,
        cbt_strict: bool = False,
        shell_idle_timeout_ms: int = DEFAULT_IDLE_MS,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` (seconds, monotonic) is what shells' idleness is measured on."""
        self.executor = executor
        self.https = https
        self.allow_unencrypted = allow_unencrypted
        self.cert_dir = Path(cert_dir)
        self._creds = Credentials.parse(username, password)
        self._requested_port = port
        self._cbt_strict = cbt_strict
        self.shell_idle_timeout_ms = shell_idle_timeout_ms
        self.time_scale = time_scale
        self._clock = clock
        self._cbt: GssChannelBindings | None = None
        self._ssl_ctx: ssl.SSLContext | None = None
        self._pki: LabPki | None = None
        self._stats = _Stats()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._service: ShellService
        self._fault_lock = threading.Lock()
        self._drop_next = False
        self.reject_auth = False
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> WinRMEndpoint:
        if self._server is not None:
            return self
        register_ntlm_user(self._creds)
        if self.https:
            self._pki = LabPki.create(self.cert_dir)
            self._ssl_ctx = self._pki.server_context()
            if self._cbt_strict:
                digest = hashlib.sha256(self._pki.server_cert_der()).digest()
                self._cbt = GssChannelBindings(application_data=b"tls-server-end-point:" + digest)
        self._stopping.clear()
        server = _Server(self, self._requested_port)
        self.port = server.server_address[1]
        self._requested_port = self.port  # a restart after stop() ("reboot") reuses the port
        self._service = ShellService(
            self.executor,
            address=self.url,
            stopping=self._stopping,
            idle_timeout_ms=self.shell_idle_timeout_ms,
            time_scale=self.time_scale,
            clock=self._clock,
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"winrm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening, drop every connection and shell; idempotent; joins with a deadline."""
        server, self._server = self._server, None
        if server is None:
            return
        deadline = time.monotonic() + timeout_s
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.sockets_lock:
            conns, threads = list(server.open_sockets), list(server.threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._service.close_all()
        for t in [*threads, self._thread]:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    # -- faults ---------------------------------------------------------------------------------
    def drop_next(self, armed: bool = True) -> None:
        """Drop the connection of the next Command (or Send: an operation for a persistent
        PowerShell host) once it has started (one-shot);
        `armed=False` cancels it."""
        with self._fault_lock:
            self._drop_next = armed

    def time_out_next_sends(self, count: int = 1) -> None:
        """Answer the next `count` Sends with the w:TimedOut fault after taking their data, as a
        busy Windows host does (the endpoint must be started)."""
        assert self._service is not None, "start the endpoint first"
        self._service.send_timeouts_pending = count

    def set_operations_quota(self, count: int) -> None:
        """MaxConcurrentOperationsPerUser: Commands one shell may start (Windows' default 1500)."""
        assert self._service is not None, "start the endpoint first"
        self._service.operations_quota = count

    def expire_idle_shells(self) -> None:
        """Delete every shell and its commands now, as Windows does once a shell has been idle
        for longer than its IdleTimeOut (the next request on it faults 2150858843); the lab's
        clock does the same by itself after the (scaled) IdleTimeOut."""
        assert self._service is not None, "start the endpoint first"
        self._service.close_all()

    def _take_drop(self) -> bool:
        with self._fault_lock:
            drop, self._drop_next = self._drop_next, False
            return drop

    # -- facts ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{LOOPBACK}:{self.port}/wsman"

    @property
    def ca_file(self) -> Path:
        return LabPki.at(self.cert_dir).ca_file

    @property
    def shell_count(self) -> int:
        """Shells open now (0 before the first start)."""
        service = getattr(self, "_service", None)
        return service.shell_count if service is not None else 0

    @property
    def requests_total(self) -> int:
        """Every HTTP request, authentication round trips included."""
        with self._stats.lock:
            return self._stats.requests

    @property
    def soap_requests_total(self) -> int:
        with self._stats.lock:
            return self._stats.soap_requests

    @property
    def connections_total(self) -> int:
        with self._stats.lock:
            return self._stats.connections

    @property
    def action_counts(self) -> dict[str, int]:
        """SOAP requests per action short name (Create, Command, Receive, ...)."""
        with self._stats.lock:
            return dict(self._stats.actions)
