"""A virtual MCCI Model 3141 "USB4 Switch" (2:1 switch), over raw TCP instead of USB CDC serial.

The real 3141 is a CDC serial device (8N1, 9600 or 115200 baud) taking CR LF-terminated text
commands (docs/domain.md §8). This emulator answers every command with exactly one
CR LF-terminated line, which is what MCCI's own tools expect for `port`/`version` (they write a
command then read one line). The real `status` prints a multi-line block; ours prints one line.
The exact reply wording below is this emulator's design, not copied from MCCI firmware:

    port 1        -> "Port 1 selected"          (0 = disconnect all, 1/2 = connect peripheral)
    port          -> "1"                        (current port number)
    status        -> "port=1 superspeed=1 delay=0 timeout=0"
    version       -> "MCCI Model 3141 USB4 Switch, firmware 1.00, SN0001"
    reset         -> "Reset, port 0"
    ?             -> one help line
    anything else -> "Error: unknown command 'xyz'"
    port 7        -> "Error: invalid port '7' (use 0, 1 or 2)"

`port1` (no space) is accepted too. Fault `error`: `port N` answers `Error: hardware fault, port
unchanged` and does not switch. Faults `silent` and `drop` are handled by `LineServer`.

Example:
    >>> events = []
    >>> with McciSwitchServer(lambda p, on: events.append((p, on))) as mcci:
    ...     mcci.port > 0
    True
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from harness.virtual_lab.tcp_server import FaultKind, LineServer

log = logging.getLogger(__name__)

PORTS = (1, 2)
DEFAULT_VERSION = "MCCI Model 3141 USB4 Switch, firmware 1.00, SN0001"
_PORT_CMD = re.compile(r"port\s*(\S*)", re.IGNORECASE)


class McciSwitchServer(LineServer):
    """2:1 switch: at most one of peripheral ports 1 and 2 is connected to the host port."""

    def __init__(
        self,
        on_change: Callable[[int, bool], None] | None = None,
        *,
        version: str = DEFAULT_VERSION,
    ) -> None:
        super().__init__("mcci-3141", reply_terminator="\r\n")
        self._on_change = on_change
        self._version = version
        self._current = 0
        self._superspeed = 1

    @property
    def current_port(self) -> int:
        with self._lock:
            return self._current

    def handle_line(self, line: str) -> list[str]:
        cmd = line.strip()
        low = cmd.lower()
        m = _PORT_CMD.fullmatch(cmd)
        if m is not None:
            return [self._port(m.group(1))]
        if low == "status":
            return [f"port={self._current} superspeed={self._superspeed} delay=0 timeout=0"]
        if low == "version":
            return [self._version]
        if low == "reset":
            self._select(0)
            return ["Reset, port 0"]
        if low == "?":
            return ["Commands: port [0|1|2], status, version, reset, ?"]
        return [f"Error: unknown command '{cmd[:32]}'"]

    def _port(self, arg: str) -> str:
        if arg == "":
            return str(self._current)
        if arg not in ("0", "1", "2"):
            return f"Error: invalid port '{arg[:8]}' (use 0, 1 or 2)"
        if self._fault is FaultKind.ERROR:
            return "Error: hardware fault, port unchanged"
        self._select(int(arg))
        return f"Port {arg} selected"

    def _select(self, port: int) -> None:
        old, self._current = self._current, port
        if old == port:
            return
        log.info("%s: port %d -> %d", self.name, old, port)
        callback = self._on_change
        if callback is None:
            return
        if old:
            self._defer(functools.partial(callback, old, False))
        if port:
            self._defer(functools.partial(callback, port, True))
