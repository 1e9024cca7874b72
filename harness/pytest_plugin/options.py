"""Command-line options of the harness's pytest plugin.

pytest testplans/ --lab lab_config/virtual.yaml --plan testplans/smoke.yaml
"""

from __future__ import annotations

import pytest

DEFAULT_LAB = "lab_config/virtual.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dma-lab-harness", "DMA remapping lab harness")
    group.addoption(
        "--lab",
        action="store",
        default=DEFAULT_LAB,
        help=f"lab inventory YAML (default: {DEFAULT_LAB})",
    )
    group.addoption(
        "--plan",
        action="append",
        default=[],
        help="test plan YAML to run (repeatable)",
    )
