"""A virtual SCPI relay-matrix switch: the lab's hot-plug switch, reached by pyvisa-py over TCP.

Reachable as `TCPIP0::127.0.0.1::PORT::SOCKET` with `\\n` terminations. Headers are
case-insensitive with SCPI short/long forms (`ROUT:CLOS` = `ROUTe:CLOSe`), several commands per
line separated by `;` (a command without a leading `:` may be relative to the previous header's
parent, as in SCPI compound messages; an absolute header is accepted too), and the responses to
several queries in one line are joined by `;` on one reply line.

Commands: `*IDN?`, `*RST` (all open), `*CLS`, `*OPC?`, `ROUTe:CLOSe <list>`, `ROUTe:OPEN <list>`,
`ROUTe:CLOSe? <list>` and `ROUTe:OPEN? <list>` (`1,0,1`), `SYSTem:ERRor[:NEXT]?`.
Channel lists: `(@1,3:5)`; a range may run downwards (`(@4:2)`). The error queue is a bounded
FIFO: when full, the newest entry becomes `-350,"Queue overflow"`. A query whose channel list is
bad answers nothing and queues the error, like a real instrument.

Closing a channel calls `on_change(channel, True)` (the lab plugs the device wired to it), opening
calls `on_change(channel, False)`; only real state changes are reported.

Example:
    >>> events = []
    >>> with ScpiSwitchServer(4, lambda ch, closed: events.append((ch, closed))) as sw:
    ...     sw.port > 0
    True
    >>> parse_channel_list("(@1,3:4)", 16)
    [1, 3, 4]
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.virtual_lab.tcp_server import FaultKind, LineServer

log = logging.getLogger(__name__)

DEFAULT_IDN = "DMALAB,VSWITCH-16,SN0001,1.0"
MAX_CHANNEL_DIGITS = 6


class ScpiCode(enum.Enum):
    """SCPI-99 error codes this instrument reports: value = (code, message)."""

    NO_ERROR = (0, "No error")
    COMMAND_ERROR = (-100, "Command error")
    DATA_TYPE_ERROR = (-104, "Data type error")
    MISSING_PARAMETER = (-109, "Missing parameter")
    UNDEFINED_HEADER = (-113, "Undefined header")
    DATA_OUT_OF_RANGE = (-222, "Data out of range")
    HARDWARE_ERROR = (-240, "Hardware error")
    QUEUE_OVERFLOW = (-350, "Queue overflow")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    def entry(self) -> str:
        """The `SYST:ERR?` reply for this error: `-113,"Undefined header"`."""
        return f'{self.code},"{self.message}"'


class ScpiError(Exception):
    """A typed SCPI error raised by the parser; carries its `ScpiCode`."""

    def __init__(self, code: ScpiCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.code},{code.message}" + (f" ({detail})" if detail else ""))


_ITEM = re.compile(r"\s*([0-9]+)\s*(?::\s*([0-9]+)\s*)?", re.ASCII)


def parse_channel_list(text: str, channel_count: int) -> list[int]:
    """Parse a SCPI channel list `(@1,3:5)` into channels, in order, duplicates kept once.

    Raises `ScpiError` with -109 (nothing given), -104 (not a channel list at all), -100
    (malformed list) or -222 (a channel outside 1..channel_count).
    """
    s = text.strip()
    if not s:
        raise ScpiError(ScpiCode.MISSING_PARAMETER)
    if not s.startswith("("):
        raise ScpiError(ScpiCode.DATA_TYPE_ERROR, "expected a channel list (@...)")
    if not s.endswith(")"):
        raise ScpiError(ScpiCode.COMMAND_ERROR, "unterminated channel list")
    body = s[1:-1].strip()
    if not body.startswith("@"):
        raise ScpiError(ScpiCode.DATA_TYPE_ERROR, "channel list must start with '@'")
    items = body[1:].split(",")
    out: list[int] = []
    seen: set[int] = set()
    for item in items:
        m = _ITEM.fullmatch(item)
        if m is None:
            raise ScpiError(ScpiCode.COMMAND_ERROR, "malformed channel list item")
        lo, hi = (
            _channel(m.group(1), channel_count),
            _channel(m.group(2) or m.group(1), channel_count),
        )
        step = 1 if hi >= lo else -1
        for ch in range(lo, hi + step, step):
            if ch not in seen:
                seen.add(ch)
                out.append(ch)
    return out


def _channel(digits: str, channel_count: int) -> int:
    if len(digits) > MAX_CHANNEL_DIGITS:
        raise ScpiError(ScpiCode.DATA_OUT_OF_RANGE, "channel number too long")
    ch = int(digits)
    if not 1 <= ch <= channel_count:
        raise ScpiError(ScpiCode.DATA_OUT_OF_RANGE, f"channel {ch} not in 1..{channel_count}")
    return ch


def _mnemonic(long_form: str) -> tuple[str, str]:
    """`ROUTe` -> ('ROUT', 'ROUTE'): the short form is the upper-case part."""
    short = "".join(c for c in long_form if c.isupper())
    return short, long_form.upper()


def _matches(token: str, long_form: str) -> bool:
    return token.upper() in _mnemonic(long_form)


# Command tree: header path (long forms) -> handler name. `?` marks a query.
_TREE: dict[tuple[str, ...], str] = {
    ("ROUTe", "CLOSe"): "close",
    ("ROUTe", "OPEN"): "open",
    ("ROUTe", "CLOSe?"): "query_closed",
    ("ROUTe", "OPEN?"): "query_open",
    ("SYSTem", "ERRor?"): "next_error",
    ("SYSTem", "ERRor", "NEXT?"): "next_error",
}
_COMMON = {"*IDN?": "idn", "*RST": "rst", "*CLS": "cls", "*OPC?": "opc", "*OPC": "noop"}


def resolve_header(tokens: list[str]) -> tuple[tuple[str, ...], str] | None:
    """Match header tokens (`['rout', 'clos?']`) against the tree; None if undefined."""
    for path, handler in _TREE.items():
        if len(path) != len(tokens):
            continue
        if all(
            _matches(tok.rstrip("?"), node.rstrip("?")) and tok.endswith("?") == node.endswith("?")
            for tok, node in zip(tokens, path, strict=True)
        ):
            return path, handler
    return None


@dataclass
class ErrorQueue:
    """Bounded FIFO of SCPI errors; on overflow the newest entry is replaced by -350."""

    capacity: int = 10
    _items: deque[str] = field(default_factory=deque)

    def push(self, code: ScpiCode) -> None:
        if len(self._items) < self.capacity - 1:
            self._items.append(code.entry())
        elif len(self._items) == self.capacity - 1:
            self._items.append(ScpiCode.QUEUE_OVERFLOW.entry())
        # full (last entry already -350): further errors are lost

    def pop(self) -> str:
        return self._items.popleft() if self._items else ScpiCode.NO_ERROR.entry()

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class ScpiSwitchServer(LineServer):
    """Relay-matrix switch with `channel_count` channels, open at power-on."""

    def __init__(
        self,
        channel_count: int = 16,
        on_change: Callable[[int, bool], None] | None = None,
        *,
        idn: str = DEFAULT_IDN,
        error_queue_size: int = 10,
    ) -> None:
        super().__init__(f"scpi-switch:{idn.split(',')[1] if ',' in idn else idn}")
        if channel_count < 1:
            raise ValueError("channel_count must be >= 1")
        self.channel_count = channel_count
        self._on_change = on_change
        self._idn = idn
        self._closed: set[int] = set()
        self.errors = ErrorQueue(error_queue_size)

    def closed_channels(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._closed)

    # -- parser -----------------------------------------------------------------------------

    def handle_line(self, line: str) -> list[str]:
        answers: list[str] = []
        parent: list[str] = []
        for unit in line.split(";"):
            unit = unit.strip()
            if not unit:
                continue
            try:
                answer, parent = self._execute(unit, parent)
            except ScpiError as e:
                self.errors.push(e.code)
                log.debug("%s: %s -> %s", self.name, unit[:40], e)
                if e.code.code > -200:  # a command (syntax) error discards the rest of the line
                    break
                continue
            if answer is not None:
                answers.append(answer)
        return [";".join(answers)] if answers else []

    def _execute(self, unit: str, parent: list[str]) -> tuple[str | None, list[str]]:
        header, _, arg = unit.partition(" ")
        if header.startswith("*"):
            name = _COMMON.get(header.upper())
            if name is None:
                raise ScpiError(ScpiCode.UNDEFINED_HEADER, header)
            return self._common(name), parent
        absolute = header.startswith(":")
        tokens = header.lstrip(":").split(":")
        found = None if absolute or not parent else resolve_header([*parent, *tokens])
        if found is None:
            found = resolve_header(tokens)
        if found is None:
            raise ScpiError(ScpiCode.UNDEFINED_HEADER, header)
        path, handler = found
        return self._route(handler, arg), list(path[:-1])

    def _common(self, name: str) -> str | None:
        if name == "idn":
            return self._idn
        if name == "rst":
            self._set(set(self._closed), closed=False)
        elif name == "cls":
            self.errors.clear()
        elif name == "opc":
            return "1"
        return None

    def _route(self, handler: str, arg: str) -> str | None:
        if handler == "next_error":
            return self.errors.pop()
        channels = parse_channel_list(arg, self.channel_count)
        if handler == "query_closed":
            return ",".join("1" if ch in self._closed else "0" for ch in channels)
        if handler == "query_open":
            return ",".join("0" if ch in self._closed else "1" for ch in channels)
        if self._fault is FaultKind.ERROR:
            raise ScpiError(ScpiCode.HARDWARE_ERROR, "relay driver fault")
        self._set(set(channels), closed=handler == "close")
        return None

    def _set(self, channels: set[int], *, closed: bool) -> None:
        changed = sorted(ch for ch in channels if (ch in self._closed) != closed)
        for ch in changed:
            (self._closed.add if closed else self._closed.discard)(ch)
        if changed:
            log.info("%s: %s %s", self.name, "closed" if closed else "opened", changed)
        callback = self._on_change
        if callback is not None:
            for ch in changed:
                self._defer(functools.partial(callback, ch, closed))
