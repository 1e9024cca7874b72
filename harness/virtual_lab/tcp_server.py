"""A small threaded, line-oriented TCP server: the base of the virtual lab's instruments.

One accept thread plus one thread per connection. Every socket gets TCP_NODELAY (Nagle plus
delayed ACK stalls small request/reply exchanges by 40 ms), the listener binds 127.0.0.1 on
port 0, and `stop()` is idempotent and joins every thread against a deadline.

Subclasses implement `handle_line(line) -> list[str]` (the reply lines, possibly none). Commands
are serialised under one lock, like a real instrument's single parser. Callbacks that must not
run under that lock are queued with `_defer()`; they run after the command, outside the lock,
and before its reply is sent, so a client that got the reply knows the callback has run. The
base never logs line contents (a keyboard line may carry a password).

Faults (`FaultKind`) common to every instrument are handled here: `silent` swallows commands
without answering, `drop` closes the connection on the next command (one-shot). `error` is the
subclass's business (it decides what a hardware error looks like).

Example:
    >>> class Echo(LineServer):
    ...     def handle_line(self, line: str) -> list[str]:
    ...         return [line.upper()]
    >>> with Echo("echo") as srv:
    ...     srv.port > 0
    True
"""

from __future__ import annotations

import contextlib
import enum
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from harness.virtual_lab.service import Service

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024
_S = TypeVar("_S", bound="LineServer")


class FaultKind(enum.Enum):
    """Faults an instrument can be told to show at runtime."""

    NONE = "none"
    SILENT = "silent"  # stops answering: the client's reads time out
    ERROR = "error"  # the instrument reports a hardware error and does not switch
    DROP = "drop"  # the connection is closed on the next command (one-shot)
    STREAM = "stream"  # answers with bytes and never a line end, until the client goes away
    GARBAGE = "garbage"  # answers a line of binary bytes (not text)


#: What the `garbage` fault answers (then the line terminator).
GARBAGE_REPLY = b"\xff\xfe\x00\x9c\x80\xc3("


class LineServer(Service):
    """Threaded TCP server that feeds complete lines to `handle_line` and sends the replies."""

    def __init__(self, name: str, *, reply_terminator: str = "\n") -> None:
        self.name = name
        self._terminator = reply_terminator
        self._lock = threading.RLock()
        self._fault = FaultKind.NONE
        self._deferred: list[Callable[[], None]] = []
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._listen_port = 0
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._started:
            raise RuntimeError(f"{self.name}: server not started")
        return self._listen_port

    def start(self: _S) -> _S:
        if self._started:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._listener = listener
        self._listen_port = listener.getsockname()[1]
        self._started = True
        t = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        self._threads.append(t)
        t.start()
        log.debug("%s listening on 127.0.0.1:%d", self.name, self._listen_port)
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop accepting, close every connection and join the threads (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        deadline = time.monotonic() + timeout_s
        accept = self._threads[0] if self._threads else None
        if accept is not None:  # no new connections after this join
            accept.join(max(0.0, deadline - time.monotonic()))
        with self._conn_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("%s: threads still alive after stop: %s", self.name, alive)
        if self._listener is not None:
            self._listener.close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    # -- faults -----------------------------------------------------------------------------

    def set_fault(self, kind: FaultKind | str) -> None:
        with self._lock:
            self._fault = FaultKind(kind)
        log.info("%s: fault set to %s", self.name, self._fault.value)

    @property
    def fault(self) -> FaultKind:
        return self._fault

    # -- subclass API -----------------------------------------------------------------------

    def handle_line(self, line: str) -> list[str]:
        """Execute one line (terminator removed) and return the reply lines."""
        raise NotImplementedError

    def _defer(self, fn: Callable[[], None]) -> None:
        """Run `fn` after the current command, outside the instrument lock."""
        self._deferred.append(fn)

    # -- internals --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in ready or self._stopping.is_set():
                return
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conn_lock:
                self._conns.add(conn)
            t = threading.Thread(
                target=self._serve, args=(conn,), name=f"{self.name}-conn-{peer[1]}", daemon=True
            )
            # keep the accept thread first; forget finished connection threads
            self._threads = [self._threads[0]] + [x for x in self._threads[1:] if x.is_alive()]
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stopping.is_set():
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while True:
                    cut = _first_terminator(buf)
                    if cut < 0:
                        break
                    raw, buf = buf[:cut], buf[cut + 1 :]
                    if raw and not self._serve_line(conn, raw.decode("latin-1")):
                        return
                if len(buf) > MAX_LINE_BYTES:
                    log.warning("%s: line longer than %d bytes, closing", self.name, MAX_LINE_BYTES)
                    return
        except OSError:
            return
        finally:
            with self._conn_lock:
                self._conns.discard(conn)
            conn.close()

    def _serve_line(self, conn: socket.socket, line: str) -> bool:
        """Handle one line; False means close the connection."""
        with self._lock:
            fault = self._fault
            if fault is FaultKind.DROP:
                self._fault = FaultKind.NONE
                log.info("%s: dropping the connection (fault 'drop')", self.name)
                return False
            if fault is FaultKind.SILENT:
                return True
            if fault is FaultKind.GARBAGE:
                conn.sendall(GARBAGE_REPLY + self._terminator.encode())
                return True
        if fault is FaultKind.STREAM:
            return self._stream(conn)
        with self._lock:
            try:
                replies = self.handle_line(line)
            except Exception:  # an instrument bug must not kill the connection thread silently
                log.exception("%s: command handler failed", self.name)
                replies = []
            deferred, self._deferred = self._deferred, []
        for fn in deferred:  # before the reply: "OK" means the DUT side has seen the effect
            try:
                fn()
            except Exception:
                log.exception("%s: callback failed", self.name)
        if replies:
            payload = "".join(r + self._terminator for r in replies)
            conn.sendall(payload.encode("latin-1", errors="replace"))
        return True

    def _stream(self, conn: socket.socket) -> bool:
        """Send bytes without a line end until the client closes or the server stops (paced
        by the stop event's wait, so a stopped server ends it at once)."""
        chunk = b"0" * 512
        try:
            while not self._stopping.wait(0.005):
                conn.sendall(chunk)
        except OSError:
            pass
        return False


def _first_terminator(buf: bytes) -> int:
    """Index of the first CR or LF in `buf`, or -1 (CR LF yields an empty line, ignored)."""
    cr, lf = buf.find(b"\r"), buf.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)
