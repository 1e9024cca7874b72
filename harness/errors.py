"""The outcome taxonomy (DESIGN.md, Contracts) as exception types.

Only `InfrastructureError` is ever retried. `ConfigError` is raised before any lab action and
maps to exit code 2. Each error that comes from a file names the file, the line and the key.

>>> str(ConfigError("unknown key 'usr'", path="lab_config/x.yaml", line=14, key="duts.tb-01.transport"))
"lab_config/x.yaml:14: duts.tb-01.transport: unknown key 'usr'"
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """Bad lab config, plan, driver package or command-line input: refused before any lab action."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        if self.key:
            where += f"{self.key}: "
        return f"{where}{self.message}"


class TestFailure(HarnessError):
    """The product behaved differently from the expectation."""

    __test__ = False  # not a pytest test class


class DutError(HarnessError):
    """The DUT crashed or did not come back: the DUT is quarantined for the run."""


class InfrastructureError(HarnessError):
    """Network, transport, switch or lease trouble: retried a bounded number of times."""


class HarnessBug(HarnessError):
    """An internal invariant broke."""
