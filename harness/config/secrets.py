"""Secret references: `env:VAR`, `file:PATH`, `keyring:SERVICE/USER`. Never values.

A lab file names where a secret lives; the value is read only when `resolve()` is called
(never at load), and neither `repr` nor `str` can show it because the object never holds it.
A literal value where a reference belongs is a ConfigError that does not echo the value.

>>> ref = SecretRef.parse("env:WINRM_PASSWORD")
>>> ref.scheme, ref.target
('env', 'WINRM_PASSWORD')
>>> str(ref)
'env:WINRM_PASSWORD'
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from harness.config.model import SECRET_KEY_RE
from harness.config.yaml_loader import KeyPath, LoadedYaml
from harness.errors import ConfigError

SCHEMES = ("env", "file", "keyring")
HOW_TO = "write a reference instead: 'env:VARIABLE', 'file:PATH' or 'keyring:SERVICE/USER'"
LITERAL_NOT_ALLOWED = f"a literal secret is not allowed here; {HOW_TO}"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|keyring:[^/]+/.+)$"


class SecretError(ValueError):
    """A value that is not a valid secret reference. The message never contains the value."""


class SecretRef:
    """A reference to a secret (see the module docstring). Immutable, hashable."""

    __slots__ = ("scheme", "target")

    scheme: str
    target: str

    def __init__(self, scheme: str, target: str) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "target", target)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretRef is immutable")

    @classmethod
    def parse(cls, text: object) -> SecretRef:
        """Parse a reference; raise SecretError (without the value) if it is not one."""
        if not isinstance(text, str):
            raise SecretError(LITERAL_NOT_ALLOWED)
        scheme, sep, target = text.partition(":")
        if not sep or scheme not in SCHEMES:
            raise SecretError(LITERAL_NOT_ALLOWED)
        if scheme == "env" and not _ENV_NAME.match(target):
            raise SecretError(f"an env: reference needs an environment variable name; {HOW_TO}")
        if scheme == "file" and not target.strip():
            raise SecretError(f"a file: reference needs a path; {HOW_TO}")
        if scheme == "keyring":
            service, _, user = target.rpartition("/")
            if not service or not user:
                raise SecretError(f"a keyring: reference needs SERVICE/USER; {HOW_TO}")
        return cls(scheme, target)

    def resolve(self, base_dir: Path | None = None) -> str:
        """Read the secret now. A relative `file:` path is taken from `base_dir` if given."""
        if self.scheme == "env":
            value = os.environ.get(self.target)
            if value is None:
                raise ConfigError(f"secret {self}: environment variable {self.target} is not set")
            return value
        if self.scheme == "file":
            path = Path(self.target).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"secret {self}: cannot read {path}: {exc}") from None
            return text.removesuffix("\n").removesuffix("\r")
        return self._from_keyring()

    def _from_keyring(self) -> str:
        service, _, user = self.target.rpartition("/")
        try:
            keyring: Any = importlib.import_module("keyring")
        except ImportError:
            raise ConfigError(
                f"secret {self}: the 'keyring' package is not installed "
                "(pip install 'dma-lab-harness[keyring]'), or use an env: or file: reference"
            ) from None
        try:
            value = keyring.get_password(service, user)
        except Exception as exc:  # any keyring backend failure
            raise ConfigError(
                f"secret {self}: keyring lookup failed: {type(exc).__name__}"
            ) from None
        if value is None:
            raise ConfigError(f"secret {self}: no entry for user {user!r} in service {service!r}")
        return str(value)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> SecretRef:
            return value if isinstance(value, SecretRef) else cls.parse(value)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": _PATTERN,
            "description": "Secret reference: env:VAR, file:PATH or keyring:SERVICE/USER",
        }


def _walk(data: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key), value
            yield from _walk(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, (*path, i))


def check_no_literal_secrets(doc: LoadedYaml) -> None:
    """Any key named like password/passphrase/secret/token/api_key must hold a reference."""
    for path, value in _walk(doc.data, ()):
        key = path[-1]
        if not isinstance(key, str) or not SECRET_KEY_RE.search(key):
            continue
        if value is None or isinstance(value, dict | list):
            continue
        try:
            SecretRef.parse(value)
        except SecretError as exc:
            raise doc.error(str(exc), path) from None
