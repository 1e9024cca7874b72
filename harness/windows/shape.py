"""Reading an operation's JSON result into a typed value (the machinery behind `results`).

A result type is a frozen pydantic dataclass with the strict configuration `STRICT` (as JSON is
read: a bool is not an integer, an integer is not a bool, a number is not a string, timestamps
are ISO 8601 strings with `Z` or an offset, enums are their values). Fields it does not declare
are ignored, so an operation may add fields before the harness reads them. A nullable field
without a default may also be absent: absent is null. `read(op, cls, data)` validates, and a
wrong shape raises `InfrastructureError("operation X returned result.field = ..., expected
...")`, or `"... returned result.kdp without 'source'"`, naming the first wrong field.

>>> read("dmaguard_get", Annotated[int | None, Expect("an integer or null")], None) is None
True
>>> format_utc(parse_utc("2026-11-21T12:00:00.1234567Z"))
'2026-11-21T12:00:00.123Z'
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
from datetime import datetime, timezone
from typing import Annotated, Any, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import is_pydantic_dataclass

from harness.errors import InfrastructureError

#: The configuration of every result type (declare them `@dataclass(frozen=True, config=STRICT)`).
STRICT = ConfigDict(strict=True, extra="ignore")


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a field must be, in the words of an error message, when its type does not say it."""

    text: str


def _utc(stamp: datetime) -> datetime:
    return stamp.astimezone(timezone.utc)


#: `2026-11-21T12:00:00.0000000Z` (any fraction, `Z` or an offset) as an aware UTC datetime.
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc), Expect("a UTC ISO 8601 timestamp")]


def null_as(default: Any) -> BeforeValidator:
    """A field whose null (or absence, with `= default`) means `default`."""
    return BeforeValidator(lambda v: default if v is None else v)


def parse_utc(text: str) -> datetime:
    """A UTC ISO 8601 timestamp as an aware UTC datetime (`ValueError` if it is not one)."""
    return _adapter(UtcTime).validate_json(json.dumps(text), strict=True)


def format_utc(stamp: datetime) -> str:
    """The contract's form: `2026-11-21T12:00:00.000Z`."""
    utc = stamp.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class Result:
    """`from_json(op, data)` for a result type (a pydantic dataclass with `STRICT`)."""

    @classmethod
    def from_json(cls, op: str, data: Any) -> Self:
        return read(op, cls, data)


def read(op: str, kind: Any, data: Any, where: str = "result") -> Any:
    """`data` (parsed JSON) validated as `kind`; `InfrastructureError` naming the wrong field."""
    filled = _absent_as_null(kind, data)
    try:
        return _adapter(kind).validate_json(json.dumps(filled), strict=True)
    except ValidationError as exc:
        raise InfrastructureError(_describe(op, kind, filled, exc.errors()[0], where)) from None


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


# -- walking a type along a path -----------------------------------------------------------------
def _unwrap(kind: Any) -> tuple[Any, list[Any], bool]:
    """(the bare type, its `Annotated` metadata, whether null is allowed)."""
    meta: list[Any] = []
    nullable = False
    while True:
        if get_origin(kind) is Annotated:
            meta.extend(kind.__metadata__)
            kind = get_args(kind)[0]
        elif get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind):
            nullable = True
            (kind,) = (a for a in get_args(kind) if a is not type(None))
        else:
            return kind, meta, nullable


def _fields(kind: Any) -> dict[str, tuple[Any, bool]]:
    """A result type's fields by JSON name: (annotated type, required)."""
    out = {}
    for name, f in kind.__pydantic_fields__.items():
        ann = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        out[f.alias or name] = (ann, f.is_required())
    return out


def _child(kind: Any, part: str | int) -> Any:
    bare = _unwrap(kind)[0]
    if is_pydantic_dataclass(bare):
        return _fields(bare)[str(part)][0]
    args = get_args(bare)
    if get_origin(bare) is tuple:
        return args[0] if len(args) == 2 and args[1] is Ellipsis else args[int(part)]
    return args[-1]  # dict[str, X]


def _absent_as_null(kind: Any, data: Any) -> Any:
    """`data` with every absent nullable field (without a default) set to null, at every level."""
    bare = _unwrap(kind)[0]
    if is_pydantic_dataclass(bare) and isinstance(data, dict):
        out = dict(data)
        for key, (ann, required) in _fields(bare).items():
            if key in out:
                out[key] = _absent_as_null(ann, out[key])
            elif required and _unwrap(ann)[2]:
                out[key] = None
        return out
    if isinstance(data, list) and get_origin(bare) is tuple:
        return [_absent_as_null(_child(bare, i), x) for i, x in enumerate(data)]
    if isinstance(data, dict) and get_origin(bare) is dict:
        return {k: _absent_as_null(_child(bare, k), v) for k, v in data.items()}
    return data


# -- the error message ---------------------------------------------------------------------------
_PLURAL = {str: "strings", int: "integers", bool: "booleans", float: "numbers"}


def _expected(kind: Any) -> str:
    bare, meta, nullable = _unwrap(kind)
    said = [m.text for m in meta if isinstance(m, Expect)]
    if said:
        return said[0]  # the whole answer, null included
    if bare is bool:
        text = "true or false"
    elif bare is int:
        text = "an integer"
    elif bare is float:
        text = "a number"
    elif bare is str:
        text = "a string"
    elif isinstance(bare, type) and issubclass(bare, enum.Enum):
        text = "one of " + ", ".join(repr(k.value) for k in bare)
    elif get_origin(bare) is tuple:
        text = "a list of " + _PLURAL.get(_unwrap(get_args(bare)[0])[0], "objects")
    else:
        text = "an object"
    return text + (" or null" if nullable else "")


def _describe(op: str, kind: Any, data: Any, error: Any, where: str) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    keep, at = len(loc), kind  # up to the first field whose `Expect` speaks for what is inside
    for i, part in enumerate(loc):
        if any(isinstance(m, Expect) for m in _unwrap(at)[1]):
            keep = i
            break
        at = _child(at, part)
    if error["type"] == "missing" and keep == len(loc):
        return f"operation {op} returned {_path(where, loc[:-1])} without {loc[-1]!r}"
    value = data
    for part in loc[:keep]:
        value = value[part]
    return f"operation {op} returned {_path(where, loc[:keep])} = {value!r:.120}, expected " + (
        _expected(at)
    )


def _path(where: str, parts: tuple[str | int, ...]) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


class JsonObject:
    """Single fields of a result too small for a type of its own, with the same checks.

    >>> JsonObject("dmaguard_get", {"policy": 1}).ointeger("policy")
    1
    """

    def __init__(self, op: str, data: Any) -> None:
        if not isinstance(data, dict):
            read(op, dict[str, Any], data)
        self.op, self.d = op, data

    def _pick(self, key: str, kind: Any) -> Any:
        if key not in self.d:
            if _unwrap(kind)[2]:
                return None
            raise InfrastructureError(f"operation {self.op} returned result without {key!r}")
        return read(self.op, kind, self.d[key], f"result.{key}")

    def text(self, key: str) -> str:
        return self._pick(key, str)

    def otext(self, key: str) -> str | None:
        return self._pick(key, str | None)

    def integer(self, key: str) -> int:
        return self._pick(key, int)

    def ointeger(self, key: str) -> int | None:
        return self._pick(key, int | None)

    def flag(self, key: str) -> bool:
        return self._pick(key, bool)
