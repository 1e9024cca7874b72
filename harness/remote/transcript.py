"""The record of every remote call, with secrets redacted.

A `Redactor` replaces each known secret with `***` (longest first, so a secret that contains
another is masked whole). Command lines carrying `-EncodedCommand <base64>` are recorded as the
decoded script (then redacted), never as the raw base64 in which a secret would hide. A Windows
operation (the `& {...} -ParamsBase64 '...'` wrapper of docs/windows-operations.md) is recorded
as `op NAME {params}`: readable, and its parameters are redacted like any other text (values of
keys that name a secret, such as `password`, are masked whatever they are).

>>> t = Transcript(Redactor({"s3cret"}))
>>> e = t.record("net use x: /user:lab\\\\tester s3cret", exit_code=0, stdout="", stderr="", duration_s=0.1)
>>> e.command
'net use x: /user:lab\\\\tester ***'
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MASK = "***"
_ENCODED = re.compile(
    r"(?P<flag>-(?:e|ec|enc|enco|encod|encode|encoded|encodedc|encodedco|encodedcom|encodedcomm"
    r"|encodedcomma|encodedcomman|encodedcommand))\s+(?P<b64>[A-Za-z0-9+/=]{4,})",
    re.IGNORECASE,
)
_POWERSHELL = re.compile(r"\b(?:powershell|pwsh)(?:\.exe)?\b", re.IGNORECASE)
_OPERATION = re.compile(
    r"^(?P<prefix>.*?)& \{\r?\n(?P<body>.*)\r?\n\} -ParamsBase64 '(?P<b64>[^']*)'\s*$", re.S
)
_OPERATION_NAME = re.compile(r"^# Operation:\s*(?P<name>\S+)", re.M)
_SECRET_KEY = re.compile(r"pass(?:word|wd)?|secret|token|credential|pin", re.IGNORECASE)


class Redactor:
    """Masks a set of secret strings (empty strings are ignored)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        if secret:
            # also as it appears inside a JSON string (quotes, backslashes, control characters)
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            with self._lock:
                self._secrets.add(secret)
                self._secrets.add(escaped)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text


def decode_encoded_commands(command_line: str) -> str:
    """In a PowerShell command line, replace `-EncodedCommand <base64 UTF-16LE>` by the script."""
    if not _POWERSHELL.search(command_line):
        return command_line

    def _decode(m: re.Match[str]) -> str:
        try:
            script = base64.b64decode(m.group("b64"), validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return f"{m.group('flag')} <undecodable base64 withheld>"
        return f"{m.group('flag')} <decoded script>\n{script}"

    return _ENCODED.sub(_decode, command_line)


def _mask_secret_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if _SECRET_KEY.fullmatch(str(k)) and v else _mask_secret_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_secret_keys(v) for v in value]
    return value


def describe_operation(command: str) -> str:
    """A Windows operation wrapper (possibly behind a decoded powershell.exe line) shown as
    `op NAME {params json}`; any other text unchanged. Undecodable params are withheld."""
    m = _OPERATION.match(command)
    if m is None:
        return command
    found = _OPERATION_NAME.search(m.group("body"))
    name = found.group("name") if found else "<unnamed>"
    try:
        params = json.loads(base64.b64decode(m.group("b64"), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return f"op {name} <undecodable parameters withheld>"
    shown = json.dumps(_mask_secret_keys(params), ensure_ascii=False, sort_keys=True)
    return f"op {name} {shown}"


@dataclass(frozen=True)
class TranscriptEntry:
    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    started_at: float
    error: str | None = None

    def render(self) -> str:
        status = f"exit {self.exit_code}" if self.error is None else f"ERROR {self.error}"
        return (
            f"$ {self.command}\n[{status}, {self.duration_s:.3f}s]\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}\n"
        )


class Transcript:
    """Thread-safe list of redacted entries; `render()` gives the text attached to reports."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()
        self._entries: list[TranscriptEntry] = []
        self._lock = threading.Lock()

    def redact_command(self, command: str) -> str:
        return self.redactor.redact(describe_operation(decode_encoded_commands(command)))

    def record(
        self,
        command: str,
        *,
        exit_code: int | None,
        stdout: str,
        stderr: str,
        duration_s: float,
        error: str | None = None,
    ) -> TranscriptEntry:
        r = self.redactor.redact
        entry = TranscriptEntry(
            command=self.redact_command(command),
            exit_code=exit_code,
            stdout=r(stdout),
            stderr=r(stderr),
            duration_s=duration_s,
            started_at=time.time() - duration_s,
            error=r(error) if error is not None else None,
        )
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[TranscriptEntry]:
        with self._lock:
            return list(self._entries)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.entries)
