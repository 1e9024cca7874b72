"""Instrument roles and the shared VISA session used by the drivers.

Roles (small `typing.Protocol`s, so a test or another vendor's driver fits without inheritance):
`HotPlugSwitch` plugs/unplugs the device wired to a channel; `Keyboard` types on a DUT's console.

`VisaSession` wraps one pyvisa message-based resource opened through pyvisa-py (`@py`):
- every call is bounded by the VISA timeout (no sleeps); the session opens lazily and, after any
  I/O failure, is closed so that the next call reconnects on a clean stream (a late reply to a
  timed-out query can never be taken for the answer to the next one);
- every failure (timeout, refused or dropped connection) becomes `InfrastructureError` naming the
  instrument and the resource;
- TCP_NODELAY is set on TCPIP SOCKET sessions. pyvisa-py 0.8.1 does not set it itself
  (`TCPIPSocketSession._connect` only creates the socket), and setting `VI_ATTR_TCPIP_NODELAY`
  through pyvisa fails because pyvisa-py registers the generic `_set_attribute` (which raises
  `UnknownAttribute`) as its setter; the getter works. So we set the option on the session's
  socket (`visalib.sessions[session].interface`) and read it back through the VISA attribute.
- a serial resource (`ASRL...`) needs pyserial; without it, opening is a `ConfigError` naming
  the extra to install (`pip install 'dma-lab-harness[serial]'`);
- a bounded transcript of the exchanges is kept for evidence (`transcript()`); callers pass a
  redacted form for secrets.

Example:
    >>> s = VisaSession("switch", "TCPIP0::127.0.0.1::5025::SOCKET", timeout_s=1.0)
    >>> s.name
    'switch'
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections import deque
from typing import Any, Protocol, runtime_checkable

import pyvisa
from pyvisa import constants
from pyvisa.errors import VisaIOError

from harness.errors import ConfigError, InfrastructureError
from harness.extras import available, is_serial_resource, missing_message

log = logging.getLogger(__name__)

TRANSCRIPT_LINES = 200
#: The longest reply line read from an instrument (its replies are a few dozen bytes).
MAX_REPLY_BYTES = 64 * 1024
READ_CHUNK = 4096
#: How many bytes of a misbehaving reply go into the error (escaped).
EVIDENCE_BYTES = 128


def _evidence(raw: bytes) -> str:
    """The first bytes of a reply, escaped (`b'\\xff...'`), with the total length."""
    shown = repr(raw[:EVIDENCE_BYTES])
    return f"{shown}{'...' if len(raw) > EVIDENCE_BYTES else ''} ({len(raw)} bytes)"


@runtime_checkable
class HotPlugSwitch(Protocol):
    """Plugs and unplugs the device wired to a channel."""

    def connect(self, channel: int) -> None: ...
    def disconnect(self, channel: int) -> None: ...
    def state(self, channel: int) -> bool: ...
    def identify(self) -> str: ...
    def close(self) -> None: ...


@runtime_checkable
class Keyboard(Protocol):
    """Types on a DUT's console (e.g. the password to unlock a session)."""

    def type_text(self, text: str) -> None: ...
    def press(self, key: str) -> None: ...
    def close(self) -> None: ...


class VisaSession:
    """One pyvisa-py resource with deadlines, reconnect-after-failure and a transcript."""

    def __init__(
        self,
        name: str,
        resource: str,
        *,
        timeout_s: float,
        read_termination: str = "\n",
        write_termination: str = "\n",
        serial_baud: int = 9600,
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.name = name
        self.resource = resource
        self.timeout_s = timeout_s
        self._read_term = read_termination
        self._write_term = write_termination
        self._baud = serial_baud
        self._rm = resource_manager
        self._inst: Any = None
        self._transcript: deque[str] = deque(maxlen=TRANSCRIPT_LINES)
        self.open_seconds: float | None = None  # how long the last open took (for the report)

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        if self._inst is not None:
            return
        if is_serial_resource(self.resource) and not available("serial"):
            # pyvisa-py would fail inside open_resource with its own hint; ours names the extra
            raise ConfigError(f"{self.name} ({self.resource}): {missing_message('serial')}")
        t0 = time.perf_counter()
        ms = max(1, round(self.timeout_s * 1000))
        try:
            if self._rm is None:
                self._rm = pyvisa.ResourceManager("@py")
            inst: Any = self._rm.open_resource(
                self.resource,
                read_termination=self._read_term,
                write_termination=self._write_term,
                timeout=ms,
                open_timeout=ms,
            )
        except Exception as e:  # pyvisa-py raises a bare Exception("could not connect: ...")
            raise self.error(f"cannot open: {e}") from e
        if is_serial_resource(self.resource):
            inst.baud_rate = self._baud
            inst.data_bits = 8
            inst.parity = constants.Parity.none
            inst.stop_bits = constants.StopBits.one
        self._inst = inst
        self._set_nodelay()
        self.open_seconds = time.perf_counter() - t0
        self._transcript.append(f"# open {self.resource} ({self.open_seconds * 1000:.1f} ms)")

    def close(self) -> None:
        """Close the resource. The ResourceManager is left open on purpose: pyvisa hands out one
        shared manager per VISA library, and closing it would close other drivers' sessions."""
        self._drop()

    def _drop(self) -> None:
        inst, self._inst = self._inst, None
        if inst is not None:
            with contextlib.suppress(Exception):
                inst.close()

    def nodelay(self) -> bool | None:
        """TCP_NODELAY as VISA reports it (None when not a TCPIP SOCKET session)."""
        if self._inst is None or "::SOCKET" not in self.resource.upper():
            return None
        try:
            return bool(self._inst.get_visa_attribute(constants.VI_ATTR_TCPIP_NODELAY))
        except Exception:
            return None

    # -- I/O --------------------------------------------------------------------------------

    def write(self, command: str, *, shown: str | None = None) -> None:
        """Send one command; `shown` replaces it in the transcript and in error messages."""
        self.open()
        self._transcript.append(f"> {shown if shown is not None else command}")
        try:
            self._inst.write(command)
        except (VisaIOError, OSError) as e:
            self._drop()
            raise self._io_error(shown if shown is not None else command, e) from e
        except BaseException:  # Ctrl-C mid-write: what reached the instrument is unknown
            self._drop()
            raise

    def query(self, command: str, *, shown: str | None = None) -> str:
        """Send one command and read one reply line (terminator stripped)."""
        self.write(command, shown=shown)
        try:
            raw = self._read_line(shown or command)
        except (VisaIOError, OSError) as e:
            peer_closed = self._peer_closed()
            self._drop()
            raise self._io_error(shown or command, e, peer_closed=peer_closed) from e
        except BaseException:
            # Ctrl-C (KeyboardInterrupt) between the command and its reply: the reply is still
            # in flight, and the next query on this connection would read it as its own
            self._drop()
            raise
        try:
            reply = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self._drop()  # the stream is not trusted any more
            raise self.error(
                f"{shown or command!r}: the reply is not text: {_evidence(raw)}"
            ) from None
        self._transcript.append(f"< {reply}")
        return reply

    def _read_line(self, command: str) -> bytes:
        """One reply line, bounded in total: within `timeout_s` however the bytes trickle in,
        and at most MAX_REPLY_BYTES (an instrument streaming without a line end is an
        InfrastructureError with the first bytes as evidence)."""
        term = self._read_term.encode()
        deadline = time.monotonic() + self.timeout_s
        buf = bytearray()
        try:
            while not buf.endswith(term):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(buf) > MAX_REPLY_BYTES:
                    self._drop()
                    why = (
                        f"more than {MAX_REPLY_BYTES} bytes"
                        if len(buf) > MAX_REPLY_BYTES
                        else f"no complete reply within {self.timeout_s:g} s"
                    )
                    raise self.error(f"{command!r}: {why} and no line end: {_evidence(bytes(buf))}")
                self._inst.timeout = max(1, round(remaining * 1000))
                chunk, _status = self._inst.visalib.read(self._inst.session, READ_CHUNK)
                buf += chunk
        finally:
            if self._inst is not None:
                self._inst.timeout = max(1, round(self.timeout_s * 1000))
        return bytes(buf[: -len(term)])

    def transcript(self) -> list[str]:
        return list(self._transcript)

    # -- internals --------------------------------------------------------------------------

    def _socket(self) -> socket.socket | None:
        try:
            sock = self._inst.visalib.sessions[self._inst.session].interface
        except (AttributeError, KeyError, TypeError):
            return None
        return sock if isinstance(sock, socket.socket) else None

    def _set_nodelay(self) -> None:
        sock = self._socket()
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _peer_closed(self) -> bool:
        sock = self._socket()
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _io_error(
        self, command: str, e: Exception, *, peer_closed: bool = False
    ) -> InfrastructureError:
        if peer_closed:
            what = "connection closed by the instrument"
        elif isinstance(e, VisaIOError) and e.error_code == constants.StatusCode.error_timeout:
            what = f"no reply within {self.timeout_s:g} s"
        else:
            what = f"I/O error: {e}"
        return self.error(f"{command!r}: {what}")

    def error(self, message: str) -> InfrastructureError:
        log.warning("%s (%s): %s", self.name, self.resource, message)
        return InfrastructureError(f"{self.name} at {self.resource}: {message}")
