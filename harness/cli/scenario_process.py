"""Which pytest plugins the scenario process of `harness run` loads.

`harness run` runs pytest on the plan's scenarios in a child process (`run_job.RunJob`). That
process loads the harness's plugin and the plugins the harness relies on, and no other plugin
that happens to be installed in the same environment: pytest's autoloading of `pytest11` entry
points is switched off (`PYTEST_DISABLE_PLUGIN_AUTOLOAD`, which every pytest from 3.x on honours;
https://docs.pytest.org/en/stable/reference/reference.html#envvar-PYTEST_DISABLE_PLUGIN_AUTOLOAD)
and the plugins below are named with `-p`. A plugin that reorders tests (pytest-randomly),
reruns failures (pytest-rerunfailures) or imports a heavy package at start (hypothesis: about
0.6 s of CPU per process) would otherwise change a lab run because of what else is in the
virtualenv. xdist starts its workers with the same arguments and environment, so they load the
same set. To add a plugin to a run anyway, name it after `--`:

    harness run testplans/smoke.yaml -- -p pytest_randomly

Running the scenario tests by hand with plain `pytest` keeps pytest's usual autoloading.
"""

from __future__ import annotations

from collections.abc import Mapping

#: pytest's switch for entry-point autoloading (any non-empty value turns it off)
AUTOLOAD_ENV = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"

#: The plugins of a scenario run, by module: the harness's own (the `dma_lab_harness` entry
#: point), Allure results, xdist for `-n` (its two entry points), pytest-timeout for the
#: per-scenario backstop the harness's plugin sets.
SCENARIO_PLUGINS = (
    "harness.pytest_plugin.plugin",
    "allure_pytest.plugin",
    "xdist.plugin",
    "xdist.looponfail",
    "pytest_timeout",
)


def plugin_args() -> list[str]:
    """`-p MODULE` for each plugin of a scenario run."""
    args: list[str] = []
    for module in SCENARIO_PLUGINS:
        args += ["-p", module]
    return args


def scenario_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` (the controller's environment) with pytest's plugin autoloading off."""
    return {**base, AUTOLOAD_ENV: "1"}
