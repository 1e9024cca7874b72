"""The active part of the plugin, registered by plugin.py only when a plan or a lab is given.

`activate()` registers this module (its fixtures and hooks, re-exported below from
fixtures.py and hooks.py) and a `Coordinator` that owns what belongs to the whole pytest run:

- the run id, shared with xdist workers, which the DUT leases carry (a lease held by another
  worker of the same run is a harness bug, not an unreachable DUT);
- the virtual lab of an xdist run: the controller starts one and hands its endpoints file to
  every worker (without xdist the `lab` fixture starts it on first use);
- the DUT scheduler (`xdist_scheduler.DutScheduling`) when a plan is given: each worker gets
  whole DUTs, whatever `--dist` says.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.deadlines import RUN_END, RUN_END_INPUT
from harness.pytest_plugin.fixtures import (  # noqa: F401  (pytest fixtures)
    _prepared,
    driver_package,
    dut,
    dut_pool,
    expected,
    lab,
    planned_scenario,
    plugged_device,
    scenario,
    scenario_runner,
    switch,
)
from harness.pytest_plugin.hooks import (  # noqa: F401  (pytest hooks)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_runtest_makereport,
)
from harness.pytest_plugin.options import read_options
from harness.pytest_plugin.runinfo import ENDPOINTS_INPUT, LAB_ENDPOINTS, RUN_ID, RUN_ID_INPUT

__all__ = ["Coordinator", "activate"]


def activate(config: pytest.Config, name: str) -> None:
    import sys

    config.pluginmanager.register(sys.modules[__name__], name)
    config.pluginmanager.register(Coordinator(config), f"{name}-coordinator")


def _is_xdist_controller(config: pytest.Config) -> bool:
    if hasattr(config, "workerinput"):
        return False
    dist = config.getoption("dist", "no")
    return dist not in (None, "no") and bool(config.getoption("tx", None))


class Coordinator:
    """Hooks with state for the whole run (see the module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.running: Any = None  # the RunningLab this process started for xdist workers

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        workerinput = getattr(config, "workerinput", None)
        options = read_options(config)
        if workerinput is not None:
            config.stash[RUN_ID] = str(workerinput.get(RUN_ID_INPUT) or "")
            endpoints = workerinput.get(ENDPOINTS_INPUT)
            config.stash[LAB_ENDPOINTS] = Path(endpoints) if endpoints else None
            return
        run_dir = options.run_dir
        config.stash[RUN_ID] = run_dir.name if run_dir else f"pytest-{uuid.uuid4().hex[:12]}"
        config.stash[LAB_ENDPOINTS] = options.lab_endpoints
        if options.lab_endpoints is None and _is_xdist_controller(config):
            self._start_shared_lab(config)

    def _start_shared_lab(self, config: pytest.Config) -> None:
        from harness.errors import ConfigError, InfrastructureError
        from harness.pytest_plugin.selection import selection

        try:
            lab_config = selection(config).lab
        except pytest.UsageError:
            return  # reported again, with file and line, when the tests are collected
        if lab_config.virtual is None:
            return
        from harness.report.run_dir import RunDir
        from harness.virtual_lab.launcher import start_virtual_lab

        try:
            run_dir = read_options(config).run_dir
            keep = RunDir(run_dir).virtual_lab_log if run_dir else None
            self.running = start_virtual_lab(lab_config.path, keep_log=keep)
        except (InfrastructureError, ConfigError) as exc:
            raise pytest.UsageError(f"harness: {exc}") from None
        config.stash[LAB_ENDPOINTS] = self.running.tempdir / "endpoints.json"

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: each worker gets the run id, the shared lab and the run deadline."""
        stash = node.config.stash
        node.workerinput[RUN_ID_INPUT] = stash.get(RUN_ID, "")
        endpoints = stash.get(LAB_ENDPOINTS, None)
        node.workerinput[ENDPOINTS_INPUT] = str(endpoints) if endpoints else None
        node.workerinput[RUN_END_INPUT] = stash.get(RUN_END, None)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """With a plan, each worker gets whole DUTs (xdist_scheduler.py)."""
        if not read_options(config).plans:
            return None
        from harness.pytest_plugin.selection import selection
        from harness.pytest_plugin.xdist_scheduler import DutScheduling, group_by_scenario

        return DutScheduling(group_by_scenario(selection(config)), log)
