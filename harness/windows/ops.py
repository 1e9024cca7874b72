"""The Windows operations catalog: one PowerShell script per operation, delivered with its params.

`build_invocation` wraps an operation's script exactly as docs/windows-operations.md says: the
script in a script block, called with `-ParamsBase64` (UTF-8 JSON of the parameters, base64), so
the parameters reach the script as data and are never spliced into code. `parse_result` takes the
script's one JSON line back out of a finished call.

>>> catalog = OperationCatalog()                                       # harness/windows/ops/*.ps1
>>> script = catalog.build_invocation("file_hash", {"path": "C:\\\\it's.txt"})  # doctest: +SKIP
>>> script.endswith("} -ParamsBase64 'eyJwYXRoIjogIkM6XFxpdCdzLnR4dCJ9'")     # doctest: +SKIP
True
>>> catalog.parse_result("file_hash", shell.run_powershell(script, timeout_s=60))  # doctest: +SKIP
{'path': "C:\\\\it's.txt", 'exists': True, 'size': 12, 'sha256': '...'}
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessBug, InfrastructureError
from harness.remote.base import CommandResult

#: The operation scripts shipped with the package.
OPS_DIR = Path(__file__).resolve().parent / "ops"
STDERR_EXCERPT = 300


def encode_params(params: Mapping[str, Any]) -> str:
    """Base64 of the UTF-8 JSON of `params` (non-ASCII kept as UTF-8, keys sorted)."""
    text = json.dumps(dict(params), ensure_ascii=False, sort_keys=True)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_params(encoded: str) -> dict[str, Any]:
    """The inverse of `encode_params` (what the script's first lines do on the host)."""
    value = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("the parameters are not a JSON object")
    return value


def wrap_script(script: str, params: Mapping[str, Any]) -> str:
    """The delivery wrapper: `& {<script>} -ParamsBase64 '<base64 JSON>'`."""
    return f"& {{\n{script}\n}} -ParamsBase64 '{encode_params(params)}'"


class OperationCatalog:
    """The operation scripts of one folder (`OPS_DIR` unless told), read once and cached."""

    def __init__(self, directory: Path = OPS_DIR) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OperationCatalog({str(self.directory)!r})"

    def operation_names(self) -> list[str]:
        """The operations available: the stems of the folder's `.ps1` files, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.ps1") if p.is_file())

    def script_text(self, name: str) -> str:
        """The text of `NAME.ps1` (BOM and trailing newlines stripped); `HarnessBug` if unknown."""
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        path = self.directory / f"{name}.ps1"
        if not name.isidentifier() or not path.is_file():
            known = ", ".join(self.operation_names()) or "none"
            raise HarnessBug(
                f"unknown Windows operation {name!r}: no {path.name} in {self.directory} "
                f"(known: {known})"
            )
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").rstrip("\n")
        with self._lock:
            self._cache[name] = text
        return text

    def build_invocation(self, name: str, params: Mapping[str, Any]) -> str:
        """The PowerShell text that runs operation `name` with `params` (see the module doc)."""
        return wrap_script(self.script_text(name), params)

    def parse_result(self, name: str, result: CommandResult) -> dict[str, Any]:
        """The operation's result object; `InfrastructureError` on failure or no JSON line."""
        return parse_result(name, result)


def parse_result(name: str, result: CommandResult) -> dict[str, Any]:
    """The last stdout line that starts with `{`, parsed as a JSON object.

    A non-zero exit code (the script threw) or no such line is an `InfrastructureError` naming
    the operation, the exit code and the first 300 characters of stderr.
    """
    stderr = result.stderr.strip()[:STDERR_EXCERPT]
    if result.exit_code != 0:
        raise InfrastructureError(
            f"operation {name} failed: exit {result.exit_code}: {stderr or '(no stderr)'}"
        )
    lines = [ln.strip() for ln in result.stdout.splitlines()]
    candidates = [ln for ln in lines if ln.startswith("{")]
    if not candidates:
        raise InfrastructureError(
            f"operation {name} returned no JSON result (exit {result.exit_code}; "
            f"stdout {result.stdout.strip()[:STDERR_EXCERPT]!r}): {stderr or '(no stderr)'}"
        )
    try:
        value = json.loads(candidates[-1])
    except json.JSONDecodeError as exc:
        raise InfrastructureError(
            f"operation {name} returned malformed JSON (exit {result.exit_code}, {exc}): "
            f"{stderr or '(no stderr)'}"
        ) from exc
    if not isinstance(value, dict):
        raise InfrastructureError(
            f"operation {name} returned {type(value).__name__}, not a JSON object "
            f"(exit {result.exit_code})"
        )
    return value


def operation_names(directory: Path = OPS_DIR) -> list[str]:
    """The operations in `directory` (uncached; a long-lived caller keeps an `OperationCatalog`)."""
    return OperationCatalog(directory).operation_names()


def script_text(name: str, directory: Path = OPS_DIR) -> str:
    """The text of one operation script (uncached, see `OperationCatalog.script_text`)."""
    return OperationCatalog(directory).script_text(name)


def build_invocation(name: str, params: Mapping[str, Any], directory: Path = OPS_DIR) -> str:
    """The delivery wrapper of one operation (uncached, see `OperationCatalog`)."""
    return OperationCatalog(directory).build_invocation(name, params)
