"""`harness.steps`: typed report steps declared with `@step`."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.steps import Stepping, step


class Sink:
    def __init__(self) -> None:
        self.titles: list[str] = []
        self.depth = 0
        self.nested: list[str] = []

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        if self.depth:
            self.nested.append(title)
        self.titles.append(title)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


class Host(Stepping):
    def __init__(self) -> None:
        self.polls = 0

    @step("hardware_id", "present_only")
    def pnp_devices(
        self, hardware_id: str, present_only: bool = True, *, timeout_s: float = 5.0
    ) -> int:
        self.polls += 1
        return self.polls

    @step("user")
    def set_autologon(self, enabled: bool, *, user: str, password: str) -> bool:
        return enabled

    @step("path")
    def upload(self, path: Path) -> str:
        return path.name

    @step()
    def fail(self) -> None:
        raise RuntimeError("boom")


@step("hardware_id")
def wait_for_device(host: Host, hardware_id: str, polls: int) -> int:
    last = 0
    for _ in range(polls):
        last = host.pnp_devices(hardware_id)
    return last


def test_without_a_sink_a_step_is_a_plain_call() -> None:
    host = Host()
    assert host.pnp_devices("PCI\\VEN_1") == 1 and wait_for_device(host, "X", 2) == 3


def test_titles_show_the_named_parameters_only() -> None:
    host, sink = Host(), Sink()
    host.report_steps(sink, "tb-01")
    host.pnp_devices("PCI\\VEN_144D*", False, timeout_s=3)
    host.pnp_devices(hardware_id="A")
    assert host.set_autologon(True, user="lab", password="hunter2") is True
    host.upload(Path("/tmp/pkg/dmalab.inf"))
    assert sink.titles == [
        "tb-01: pnp_devices('PCI\\\\VEN_144D*', False)",
        "tb-01: pnp_devices('A')",
        "tb-01: set_autologon(user='lab')",
        "tb-01: upload(dmalab.inf)",
    ]
    assert not any("hunter2" in t for t in sink.titles)


def test_calls_a_step_makes_on_its_own_object_are_part_of_it() -> None:
    host, sink = Host(), Sink()
    host.report_steps(sink, "tb-01")
    assert wait_for_device(host, "PCI\\X", 3) == 3
    host.pnp_devices("after")
    assert sink.titles == ["tb-01: wait_for_device('PCI\\\\X')", "tb-01: pnp_devices('after')"]
    assert sink.nested == []


def test_a_step_that_raises_is_closed_and_the_next_one_is_reported() -> None:
    host, sink = Host(), Sink()
    host.report_steps(sink, "tb-01")
    with pytest.raises(RuntimeError, match="boom"):
        host.fail()
    host.pnp_devices("x")
    assert sink.titles == ["tb-01: fail()", "tb-01: pnp_devices('x')"] and sink.depth == 0


def test_signatures_are_kept_for_readers_and_type_checkers() -> None:
    params = list(inspect.signature(Host.pnp_devices).parameters)
    assert params == ["self", "hardware_id", "present_only", "timeout_s"]
    assert Host.pnp_devices.__name__ == "pnp_devices"


def test_a_step_naming_a_parameter_that_does_not_exist_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="no parameter channel"):

        @step("channel")
        def connect(self: object, port: int) -> None: ...
