"""Reading an operation's JSON result with type checks (the helpers behind `results`).

A `JsonObject` hands out fields by type; a wrong or missing one raises
`InfrastructureError("operation X returned result.field = ..., expected ...")`. A bool is not
an integer, an integer is not a bool, and timestamps are UTC ISO 8601 (`...Z` or an offset).

>>> JsonObject("host_facts", {"build": 22631}).integer("build")
22631
>>> format_utc(parse_utc("2026-11-21T12:00:00.1234567Z"))
'2026-11-21T12:00:00.123Z'
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

from harness.errors import InfrastructureError

_TIME = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE
)


def parse_utc(text: str) -> datetime:
    """`2026-11-21T12:00:00.0000000Z` (any fraction, `Z` or an offset) as an aware UTC datetime."""
    m = _TIME.match(text.strip())
    if m is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    stamp = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
    return stamp.astimezone(timezone.utc)


def format_utc(stamp: datetime) -> str:
    """The contract's form: `2026-11-21T12:00:00.000Z`."""
    utc = stamp.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_E = TypeVar("_E", bound=enum.Enum)


class JsonObject:
    """One JSON object of an operation's result, read field by field with type checks."""

    def __init__(self, op: str, value: Any, where: str = "result") -> None:
        self.op, self.where = op, where
        if not isinstance(value, dict):
            self.fail(where, value, "an object")
        self.d: dict[str, Any] = value

    def fail(self, where: str, value: Any, expected: str) -> NoReturn:
        raise InfrastructureError(
            f"operation {self.op} returned {where} = {value!r:.120}, expected {expected}"
        )

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.d:
            if optional:
                return None
            raise InfrastructureError(f"operation {self.op} returned {self.where} without {key!r}")
        return self.d[key]

    def _typed(self, key: str, kinds: tuple[type, ...], name: str, optional: bool) -> Any:
        v = self._get(key, optional)
        if v is None and optional:
            return None
        if not isinstance(v, kinds) or (bool not in kinds and isinstance(v, bool)):
            self.fail(f"{self.where}.{key}", v, name + (" or null" if optional else ""))
        return v

    def text(self, key: str) -> str:
        return self._typed(key, (str,), "a string", False)

    def otext(self, key: str) -> str | None:
        return self._typed(key, (str,), "a string", True)

    def integer(self, key: str) -> int:
        return self._typed(key, (int,), "an integer", False)

    def ointeger(self, key: str) -> int | None:
        return self._typed(key, (int,), "an integer", True)

    def flag(self, key: str) -> bool:
        return self._typed(key, (bool,), "true or false", False)

    def oflag(self, key: str) -> bool | None:
        return self._typed(key, (bool,), "true or false", True)

    def ofloat(self, key: str) -> float | None:
        v = self._typed(key, (int, float), "a number", True)
        return None if v is None else float(v)

    def time(self, key: str) -> datetime:
        v = self.text(key)
        try:
            return parse_utc(v)
        except ValueError:
            self.fail(f"{self.where}.{key}", v, "a UTC ISO 8601 timestamp")

    def otime(self, key: str) -> datetime | None:
        return None if self._get(key, True) is None else self.time(key)

    def texts(self, key: str) -> tuple[str, ...]:
        v = self._typed(key, (list,), "a list of strings", False)
        if not all(isinstance(x, str) for x in v):
            self.fail(f"{self.where}.{key}", v, "a list of strings")
        return tuple(v)

    def obj(self, key: str) -> JsonObject:
        return JsonObject(self.op, self._get(key, False), f"{self.where}.{key}")

    def oobj(self, key: str) -> JsonObject | None:
        """An optional object: `None` when the key is missing or null."""
        return None if self._get(key, True) is None else self.obj(key)

    def objs(self, key: str) -> list[JsonObject]:
        v = self._typed(key, (list,), "a list of objects", False)
        return [JsonObject(self.op, x, f"{self.where}.{key}[{i}]") for i, x in enumerate(v)]

    def choice(self, key: str, kind: type[_E]) -> _E:
        v = self.text(key)
        try:
            return kind(v)
        except ValueError:
            allowed = ", ".join(repr(k.value) for k in kind)
            self.fail(f"{self.where}.{key}", v, f"one of {allowed}")
