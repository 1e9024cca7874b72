"""Shared fixtures: one virtual lab per test module, from `lab` (a module may override `lab`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.lab.connect import LabConnector
from harness.virtual_lab.runtime import VirtualLabRuntime

LAB_FILE = Path(__file__).resolve().parents[2] / "lab_config" / "virtual.yaml"


@pytest.fixture(scope="module")
def lab() -> Lab:
    return load_lab(LAB_FILE)


@pytest.fixture(scope="module")
def runtime(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualLabRuntime]:
    rt = VirtualLabRuntime(lab, workdir=tmp_path_factory.mktemp("vlab")).start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def connector(lab: Lab, runtime: VirtualLabRuntime) -> LabConnector:
    return LabConnector(lab, runtime.endpoints())
