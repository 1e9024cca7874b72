"""The pytest plugin registered through the `pytest11` entry point: idle unless asked.

Every pytest run in an environment with the harness installed loads this module, so it
registers the plugin's options (options.py) and nothing else: no fixture, no hook that runs, no
import of the lab machinery (paramiko, pywinrm, pyvisa, `harness.lab`). Only when a plan or a
lab is given (`--dma-plan`/`--dma-lab`, the ini keys `dma_plan`/`dma_lab`, or the environment
variables `DMA_HARNESS_PLAN`/`DMA_HARNESS_LAB`) does `pytest_configure` register the active
part (`active.py`: fixtures, hooks, the DUT scheduler for pytest-xdist), the way pytest's own
stepwise plugin registers itself only when asked.

    pytest testplans/test_scenarios.py --dma-plan testplans/smoke.yaml -n 2
"""

from __future__ import annotations

import pytest

from harness.pytest_plugin.options import pytest_addoption as pytest_addoption
from harness.pytest_plugin.options import read_options

#: Name under which the active part is registered with pytest's plugin manager.
ACTIVE_PLUGIN = "dma-lab-harness-active"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dma_conditions(dut, port, driver_package, kdp=, dmaguard=, verifier_dma=, "
        "test_signing=, session=): the conditions a hand-written scenario test needs "
        "(with --dma-lab or --dma-plan)",
    )
    if not read_options(config).active or config.pluginmanager.has_plugin(ACTIVE_PLUGIN):
        return
    from harness.pytest_plugin import active

    active.activate(config, ACTIVE_PLUGIN)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` with a plan: one worker per DUT of the selection (else xdist's default).

    xdist asks before `pytest_configure`, so this hook lives here and not in the active part.
    """
    if not read_options(config).plans:
        return None
    from harness.pytest_plugin.selection import selection

    return max(1, len(selection(config).duts))
