"""Shared CLI plumbing: the error-to-exit-code mapping and JSON output.

Exit codes: 0 ok, 1 a scenario failed, 2 usage or configuration error, 3 infrastructure only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

import typer

from harness.errors import ConfigError


class ExitCode(IntEnum):
    OK = 0
    TEST_FAILED = 1
    USAGE = 2
    INFRASTRUCTURE = 3


def usage_error(message: str) -> typer.Exit:
    """Print `message` to stderr and return an Exit(2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(ExitCode.USAGE)


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """Turn ConfigError (and its domain cousins, which are ValueErrors with a clear text) into exit 2."""
    try:
        yield
    except ConfigError as exc:
        raise usage_error(str(exc)) from None


def print_json(obj: Any) -> None:
    """Print `obj` as indented JSON in one write (json.dump's many small writes cost seconds
    on a pipe at 10,000 scenarios)."""
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
