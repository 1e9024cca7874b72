"""Allure steps: the flow's `Steps` sink (each step also updates the DUT's progress file,
`progress/<dut>.json` in the run directory, which `harness run` reads for its live display), and
`AllureStepSink`, where the `@step` methods of a DUT's host, switches, keyboard and session
control report (`harness.steps`), so each operation and switch action shows in the report.

>>> open_kit(lab, connector, "tb-01", timeouts, steps=AllureStepSink(redact))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import allure

from harness.private_files import open_private
from harness.pytest_plugin.reports_disk import is_disk_error, note

_KINDS = {
    "text": allure.attachment_type.TEXT,
    "json": allure.attachment_type.JSON,
}


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
        try:
            with open_private(tmp, "w", encoding="utf-8") as f:  # 0600; no fsync: a hint
                f.write(json.dumps(data))
            tmp.replace(self.path)
        except OSError as exc:  # a full reports disk must not stop a step (reports_disk.py)
            if not is_disk_error(exc):
                raise
            note(exc, f"progress of {self.dut}")


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
        try:
            allure.attach(
                self.redact(body), name=name, attachment_type=_KINDS.get(kind, _KINDS["text"])
            )
        except OSError as exc:  # the reports disk is full: the flow goes on (reports_disk.py)
            if not is_disk_error(exc):
                raise
            note(exc, f"attachment {name}")


class AllureStepSink:
    """The `StepSink` the kit's host, switches, keyboard and session control report their
    `@step` calls to (`harness.steps`): each call is an Allure step, its title redacted."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        self.redact = redact or (lambda s: s)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        with allure.step(self.redact(title)):
            yield


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
