"""`harness lab doctor LAB [--timeout S] [--json] [--deep] [--bundle FILE]`: is the lab ready?

For a lab with a `virtual:` section the virtual lab is started first, in a child process as
`harness run` does, and stopped at the end (also on errors and Ctrl-C). Prints one table (or a
JSON list with `--json`); exit 0 when nothing FAILs, 1 when something is broken, 2 for a bad lab
file, 3 when the virtual lab itself cannot start.

    harness lab doctor lab_config/virtual.yaml
    harness lab doctor          # lab_config/virtual.yaml here, else the packaged virtual lab
    harness lab doctor my-lab.yaml --deep --bundle doctor.zip   # before the first real run

Every DUT and instrument is checked at the same time. `--deep` adds the readiness checks of
`harness.doctor_deep` (docs/real-lab.md); `--bundle` writes a zip of the table, each DUT's
transcript and the lab file, secrets masked, to send back with a question.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from harness.cli.common import ExitCode, config_errors_exit, print_json, usage_error
from harness.config.endpoints import LabEndpoints
from harness.config.lab import Lab, load_lab
from harness.errors import InfrastructureError
from harness.shipped import default_lab

# The checks, the transports and the virtual lab are imported when the command runs: every
# `harness` command loads this module to register it, and they cost ~0.3 s of start-up.


@contextlib.contextmanager
def lab_endpoints(lab: Lab, lab_path: Path) -> Iterator[LabEndpoints | None]:
    """The running virtual lab's endpoints for a virtual lab (started and stopped here)."""
    if lab.virtual is None:
        yield None
        return
    from harness.virtual_lab.launcher import start_virtual_lab

    with start_virtual_lab(lab_path) as running:
        yield running.endpoints


def doctor(
    lab_path: Path | None = typer.Argument(
        None,
        help="lab inventory YAML (default: lab_config/virtual.yaml if it exists, "
        "else the packaged virtual lab)",
        show_default=False,
    ),
    timeout: float = typer.Option(30.0, "--timeout", min=1, help="per-check budget, seconds"),
    as_json: bool = typer.Option(False, "--json", help="print the checks as JSON"),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="also run every read-only operation and check each assumption about the host "
        "(stdin mode, language mode, display language, DefaultShell, WinRM limits)",
    ),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        help="write a support bundle (zip: table, transcripts, lab file; secrets masked)",
        dir_okay=False,
    ),
) -> None:
    """Check reachability, trust, builds, KDP, Verifier, scripts, switches and devices."""
    from harness.doctor import broken, render, run_doctor
    from harness.doctor_bundle import write_bundle
    from harness.lab.connect import LabConnector
    from harness.remote.transcript import Transcript

    lab_path = lab_path or default_lab()
    with config_errors_exit():
        lab = load_lab(lab_path)
    if bundle is not None and bundle.exists() and not bundle.is_file():
        raise usage_error(f"--bundle {bundle}: not a file")
    transcripts: dict[str, Transcript] = {}
    try:
        with lab_endpoints(lab, lab_path) as endpoints:
            connector = LabConnector(lab, endpoints)
            checks = run_doctor(
                lab, connector, timeout_s=timeout, deep=deep, transcripts=transcripts
            )
            if bundle is not None:
                write_bundle(bundle, lab, lab_path, checks, transcripts, connector, deep=deep)
    except InfrastructureError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INFRASTRUCTURE) from None
    except KeyboardInterrupt:
        raise usage_error("interrupted") from None
    if as_json:
        print_json(
            [
                {"target": c.target, "check": c.name, "status": c.status.value, "detail": c.detail}
                for c in checks
            ]
        )
    else:
        typer.echo(render(checks))
    if bundle is not None:
        typer.echo(f"support bundle: {bundle}", err=True)
    if broken(checks):
        raise typer.Exit(ExitCode.TEST_FAILED)
