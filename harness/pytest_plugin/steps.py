"""Allure steps without writing them by hand: the flow's `Steps` sink, and `stepped(obj)`, a
proxy that turns every public method call of a `WindowsHost` or a hot-plug switch into an Allure
step named after the call, so each operation and switch action shows in the report.

Each step also updates the DUT's progress file (`progress/<dut>.json` in the run directory),
which `harness run` reads for its live display.

>>> host = stepped(WindowsHost(shell, name="tb-01", catalog=catalog), "tb-01")   # doctest: +SKIP
>>> host.pnp_devices("PCI\\\\VEN_144D*")      # shows as step "tb-01: pnp_devices('PCI\\...')"  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import allure

from harness.private_files import open_private
from harness.remote.deadline import Deadline
from harness.windows.polling import Backoff

_KINDS = {
    "text": allure.attachment_type.TEXT,
    "json": allure.attachment_type.JSON,
}
_MAX_ARG = 60


def _short(value: Any) -> str:
    if isinstance(value, Path):
        return value.name
    text = repr(value)
    return text if len(text) <= _MAX_ARG else text[: _MAX_ARG - 3] + "..."


def _shown(value: Any) -> bool:
    """Arguments worth a place in a step title (not deadlines, predicates, backoffs)."""
    return not (callable(value) or isinstance(value, (Deadline, Backoff)))


class Progress:
    """Writes `progress/<dut>.json`: the scenario and step a DUT is at, for the live display."""

    def __init__(self, directory: Path | None, dut: str) -> None:
        self.path = directory / f"{dut}.json" if directory else None
        self.dut = dut
        self.scenario = ""
        self.scenario_started = 0.0
        self.deadline_s = 0.0

    def start_scenario(self, scenario: str, deadline_s: float) -> None:
        self.scenario, self.scenario_started, self.deadline_s = scenario, time.time(), deadline_s
        self.update("start")

    def update(self, step: str) -> None:
        if self.path is None:
            return
        data = {
            "dut": self.dut,
            "scenario": self.scenario,
            "step": step,
            "scenario_started": self.scenario_started,
            "deadline_s": self.deadline_s,
            "updated": time.time(),
            "pid": os.getpid(),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open_private(tmp, "w", encoding="utf-8") as f:  # 0600; no fsync: a progress hint
            f.write(json.dumps(data))
        tmp.replace(self.path)


class AllureSteps:
    """The flow's `Steps`: Allure steps and attachments, redacted, plus progress updates."""

    def __init__(self, progress: Progress, redact: Callable[[str], str]) -> None:
        self.progress = progress
        self.redact = redact

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.progress.update(name)
        with allure.step(self.redact(name)):
            yield

    def attach(self, name: str, body: str, *, kind: str = "text") -> None:
        allure.attach(
            self.redact(body), name=name, attachment_type=_KINDS.get(kind, _KINDS["text"])
        )


class Stepped:
    """A proxy: public method calls of the wrapped object become Allure steps."""

    def __init__(self, target: Any, label: str, redact: Callable[[str], str] | None = None) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_redact", redact or (lambda s: s))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        # methods only: a callable attribute (e.g. WindowsHost.sleep) is plumbing, not a step
        if name.startswith("_") or not inspect.ismethod(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            shown = [_short(a) for a in args if _shown(a)] + [
                f"{k}={_short(v)}" for k, v in kwargs.items() if _shown(v)
            ]
            title = self._redact(f"{self._label}: {name}({', '.join(shown)})")
            with allure.step(title):
                return value(*args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"Stepped({self._target!r})"


def stepped(target: Any, label: str, redact: Callable[[str], str] | None = None) -> Any:
    """`target` with each public method call shown as an Allure step `label: method(args)`."""
    return Stepped(target, label, redact)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
