"""A virtual HID keyboard emulator (a USB keyboard dongle driven over TCP) for a DUT's console.

Line protocol (LF or CR LF), one reply line per command:

    TYPE <text>     -> "OK"        types <text> verbatim (printable ASCII; everything after
                                   the single space following TYPE, leading spaces included)
    KEY <name>      -> "OK"        one key or chord: ENTER, TAB, ESC, F5, A, CTRL+ALT+DEL ...
    *IDN?           -> "DMALAB,VHID-KBD,SN0001,1.0"
    anything else   -> "ERR <reason>"

Keystrokes go to `on_keys(keys)`: typed text verbatim; ENTER as "\\n", TAB "\\t", BACKSPACE "\\b",
ESC "\\x1b", SPACE " ", a single letter/digit key as that character (lower case); any other key or
chord as "{NAME}" (e.g. "{CTRL+ALT+DEL}", "{F5}"). A console checking for a password therefore
sees "<password>" then "\\n".

The typed text may be a password: it is never logged, only its length.

Example:
    >>> got = []
    >>> with HidKeyboardServer(got.append) as kbd:
    ...     kbd.port > 0
    True
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from harness.virtual_lab.tcp_server import FaultKind, LineServer

log = logging.getLogger(__name__)

DEFAULT_IDN = "DMALAB,VHID-KBD,SN0001,1.0"
MODIFIERS = frozenset({"CTRL", "ALT", "SHIFT", "WIN"})
_CHARS = {"ENTER": "\n", "TAB": "\t", "BACKSPACE": "\b", "ESC": "\x1b", "SPACE": " "}
_NAMED = frozenset(
    {
        *_CHARS,
        "DEL",
        "INS",
        "HOME",
        "END",
        "PGUP",
        "PGDN",
        "UP",
        "DOWN",
        "LEFT",
        "RIGHT",
        *(f"F{i}" for i in range(1, 13)),
    }
)


class KeyNameError(ValueError):
    """The KEY argument is not a known key or chord."""


def key_to_keys(name: str) -> str:
    """Translate a KEY argument into what `on_keys` receives (see the module docstring)."""
    parts = [p.strip().upper() for p in name.split("+")]
    if not parts or any(not p for p in parts):
        raise KeyNameError("empty key name")
    *mods, key = parts
    if any(m not in MODIFIERS for m in mods) or len(set(mods)) != len(mods):
        raise KeyNameError("unknown or repeated modifier")
    if key not in _NAMED and not (len(key) == 1 and key.isascii() and key.isalnum()):
        raise KeyNameError("unknown key")
    if not mods:
        if key in _CHARS:
            return _CHARS[key]
        if len(key) == 1:
            return key.lower()
    return "{" + "+".join([*mods, key]) + "}"


class HidKeyboardServer(LineServer):
    """Forwards keystrokes to `on_keys`; logs lengths and key names, never typed text."""

    def __init__(self, on_keys: Callable[[str], None] | None = None, *, idn: str = DEFAULT_IDN):
        super().__init__("hid-keyboard")
        self._on_keys = on_keys
        self._idn = idn

    def handle_line(self, line: str) -> list[str]:
        verb, sep, arg = line.partition(" ")
        verb = verb.strip().upper()
        if verb == "*IDN?":
            return [self._idn]
        if self._fault is FaultKind.ERROR and verb in ("TYPE", "KEY"):
            log.info("%s: hardware fault, keystrokes not sent", self.name)
            return ["ERR hardware fault"]
        if verb == "TYPE":
            if not sep or not arg:
                return ["ERR TYPE needs text"]
            if not all(" " <= c <= "~" for c in arg):
                return ["ERR TYPE takes printable ASCII only"]
            log.info("%s: typed %d characters", self.name, len(arg))
            self._emit(arg)
            return ["OK"]
        if verb == "KEY":
            try:
                keys = key_to_keys(arg)
            except KeyNameError as e:
                return [f"ERR {e}"]
            log.info("%s: key %s", self.name, _loggable_key(arg))
            self._emit(keys)
            return ["OK"]
        return ["ERR unknown command"]

    def _emit(self, keys: str) -> None:
        if self._on_keys is not None:
            self._defer(functools.partial(self._on_keys, keys))


def _loggable_key(name: str) -> str:
    """A chord or special key name is safe to log; a single character key might be a secret."""
    key = name.strip().upper()
    return key if len(key.rsplit("+", 1)[-1]) > 1 or "+" in key else "<1 character>"
