"""`harness lab restore LAB [--dut NAME] [--endpoints FILE]`: every DUT back to its baseline.

    harness lab restore lab_config/example_lab.yaml
    harness lab restore lab_config/virtual.yaml --endpoints /tmp/lab.json   # a running virtual lab

For the DUTs a killed run left off their baseline (`harness.lab.restore`): each DUT, under its
lease, is surveyed (what is not at the baseline is printed as `found:`), then put back with the
end-of-run teardown's steps and read back. Exit 0 when every DUT is at its baseline afterwards,
3 when one could not be restored (busy with a run, unreachable, or still off its baseline),
2 for a bad lab file or option.

A virtual lab lives in the process that serves it: `--endpoints` names the endpoints file of a
running one (`harness lab up LAB --endpoints-file FILE`); without it a fresh virtual lab is
started, whose DUTs are at their baseline already.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from harness.cli.common import ExitCode, config_errors_exit, usage_error
from harness.cli.doctor_cmd import lab_endpoints
from harness.config.endpoints import LabEndpoints
from harness.config.lab import Lab, load_lab
from harness.config.plan import Timeouts
from harness.errors import ConfigError, InfrastructureError


@contextlib.contextmanager
def _endpoints(lab: Lab, given: Path | None) -> Iterator[LabEndpoints | None]:
    if given is None:
        with lab_endpoints(lab, Path(lab.path)) as endpoints:
            yield endpoints
        return
    if lab.virtual is None:
        raise usage_error(f"--endpoints: {lab.path} has no 'virtual:' section")
    try:
        yield LabEndpoints.read(given)
    except (OSError, ValueError, KeyError) as exc:
        raise usage_error(f"--endpoints {given}: cannot read it: {exc}") from None


def restore(
    lab_path: Path = typer.Argument(..., metavar="LAB", help="The lab YAML file."),
    duts: list[str] = typer.Option(None, "--dut", help="Only these DUTs (repeatable)."),
    endpoints_file: Path | None = typer.Option(
        None, "--endpoints", help="The endpoints file of a running virtual lab of LAB."
    ),
    reboot_s: float = typer.Option(600.0, "--reboot-s", min=1, help="Reboot deadline, seconds."),
    step_s: float = typer.Option(300.0, "--step-s", min=1, help="Step deadline, seconds."),
) -> None:
    """Bring every DUT of a lab back to its baseline; print the drift found per DUT."""
    with config_errors_exit():
        lab = load_lab(lab_path)
        try:
            timeouts = Timeouts.model_validate(
                {
                    "step_s": step_s,
                    "reboot_s": reboot_s,
                    "remote_call_s": min(120.0, step_s),
                    "plug_s": min(60.0, step_s),
                    "scenario_s": max(1800.0, reboot_s, step_s),
                }
            )
        except ValueError as exc:
            raise ConfigError(f"--reboot-s/--step-s: {exc}") from None
    for name in duts or ():
        if name not in lab.duts:
            raise usage_error(f"--dut: no DUT '{name}' in {lab.path}")
    from harness.lab.connect import LabConnector  # the transports: only when it runs
    from harness.lab.restore import restore_lab

    try:
        with _endpoints(lab, endpoints_file) as endpoints:
            results = restore_lab(lab, LabConnector(lab, endpoints), timeouts, duts or None)
    except InfrastructureError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INFRASTRUCTURE) from None
    for result in results:
        for line in result.lines():
            typer.echo(line)
    bad = [r.dut for r in results if not r.restored]
    if bad:
        typer.echo(f"not restored: {', '.join(bad)}")
        raise typer.Exit(ExitCode.INFRASTRUCTURE)
    typer.echo(f"all {len(results)} DUTs at their baseline")
