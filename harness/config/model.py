"""The base of every config model, and pydantic errors turned into file:line ConfigErrors.

>>> from harness.config.yaml_loader import load_yaml_text
>>> class T(ConfigModel):
...     port: int = 1
>>> doc = load_yaml_text("port: 2\\nusr: x\\n", "x.yaml")
>>> validate_document(T, doc)
Traceback (most recent call last):
harness.errors.ConfigError: x.yaml:2: unknown key 'usr'
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from harness.config.yaml_loader import KeyPath, LoadedYaml, format_key_path
from harness.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Key names that hold secrets; their values must be references (see secrets.py).
SECRET_KEY_RE = re.compile(r"password|passphrase|secret|token|api[_-]?key", re.IGNORECASE)

#: The longest duration a lab or plan may give, in seconds (7 days): longer is a typo, and a
#: value past what the clock and thread waits take (`1e10`, `.inf`, NaN) would break the run.
MAX_DURATION_S = 7 * 24 * 3600
#: The longest instrument I/O timeout, in seconds: a switch or keyboard answers in milliseconds.
MAX_INSTRUMENT_TIMEOUT_S = 600

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class ConfigModel(BaseModel):
    """Base of the lab and plan models: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '-' and '_' (no dots or spaces)"
        )
    return value


#: A name used as a mapping key or reference (DUT, device, port, instrument, package).
Name = Annotated[str, AfterValidator(_check_name)]


def _int_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: Accepts YAML ints for enums spelled with digits (`dmaguard: 1` means "1").
IntAsStr = BeforeValidator(_int_to_str)


def _has(container: Any, part: int | str) -> bool:
    if isinstance(container, dict):
        return isinstance(part, str) and part in container
    if isinstance(container, list):
        return isinstance(part, int) and 0 <= part < len(container)
    return False


def _data_path(data: Any, loc: tuple[int | str, ...]) -> KeyPath:
    """Map a pydantic error location onto the document's key path.

    Locations contain parts that are not in the data (discriminated-union tags, `[key]`,
    function-validator names); they are skipped. The final part is kept even if absent
    (a missing or unknown key).
    """
    path: list[str | int] = []
    current: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if _has(current, part):
            path.append(part)
            current = current[part]
        elif last and isinstance(current, dict) and isinstance(part, str):
            path.append(part)
        # else: a union tag or validator name; skip
    return tuple(path)


def _is_secretish(path: KeyPath) -> bool:
    return any(isinstance(p, str) and SECRET_KEY_RE.search(p) for p in path)


def _describe(err: ErrorDetails, path: KeyPath) -> tuple[str, KeyPath, KeyPath]:
    """(message, key path to print, key path whose line to use)."""
    kind = err["type"]
    if kind == "extra_forbidden" and path:
        return f"unknown key '{path[-1]}'", path[:-1], path
    if kind == "missing" and path:
        return f"missing required key '{path[-1]}'", path[:-1], path[:-1]
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    value = err.get("input")
    if (
        kind not in ("value_error", "assertion_error")
        and isinstance(value, str | int | float)
        and len(str(value)) <= 60
        and not _is_secretish(path)
    ):
        msg += f", got {value!r}"
    return msg, path, path


def config_error(exc: ValidationError, doc: LoadedYaml) -> ConfigError:
    """One ConfigError for all of `exc`'s errors: the first in the message's first line."""
    errors: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        path = _data_path(doc.data, tuple(err["loc"]))
        message, key, line_at = _describe(err, path)
        errors.append(
            ConfigError(
                message, path=doc.path, line=doc.line_of(line_at), key=format_key_path(key) or None
            )
        )
    errors.sort(key=lambda e: e.line or 0)
    first = errors[0]
    if len(errors) > 1:
        more = "".join(f"\n{e}" for e in errors[1:])
        first = ConfigError(first.message + more, path=first.path, line=first.line, key=first.key)
    return first


def validate_document(model: type[M], doc: LoadedYaml) -> M:
    """Validate `doc.data` as `model`; errors become a ConfigError naming file, line and key."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise config_error(exc, doc) from None
