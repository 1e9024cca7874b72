"""Command-line options of the harness's pytest plugin.

    pytest testplans/ --lab lab_config/virtual.yaml --plan testplans/smoke.yaml \\
        --dut tb-01 --scenario 'tb-01.*.locked'

`harness run` adds `--run-dir` (journal, facts, progress) and `--lab-endpoints` (the endpoints
file of the virtual lab it started, so pytest workers share one lab instead of each starting
its own).
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
    group.addoption(
        "--dut", action="append", default=[], help="only scenarios on this DUT (repeatable)"
    )
    group.addoption(
        "--scenario", action="store", default=None, help="only scenario ids matching this glob"
    )
    group.addoption(
        "--scenario-list",
        action="store",
        default=None,
        help="file with one scenario id per line: only those (used by --last-failed of harness run)",
    )
    group.addoption(
        "--lab-endpoints",
        action="store",
        default=None,
        help="endpoints JSON of an already running virtual lab (else the plugin starts one)",
    )
    group.addoption(
        "--run-dir",
        action="store",
        default=None,
        help="run directory for journal.jsonl, facts/ and progress/ (harness run sets it)",
    )
