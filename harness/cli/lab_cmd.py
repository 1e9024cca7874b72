"""`harness lab validate LAB [--no-file-checks]`: check a lab file and summarise it;
`harness lab up LAB [--endpoints-file PATH]`: run its virtual lab in the foreground;
`harness lab doctor LAB`: check every DUT and instrument (see `harness.cli.doctor_cmd`).

    harness lab validate lab_config/virtual.yaml
    harness lab validate lab_config/example_lab.yaml --no-file-checks
    harness lab up lab_config/virtual.yaml --endpoints-file /tmp/lab.json

`validate` prints the DUTs (build, transport, ports), instruments, devices and driver packages
with their INF's DmaRemappingCompatible per service. `up` prints every endpoint (no password),
writes the endpoints JSON (0600) and runs until Ctrl-C or SIGTERM (exit 0); every DUT's password
is HARNESS_VIRTUAL_PASSWORD if set, else generated. A bad lab, or `up` on a lab without a
`virtual:` section, prints `error: FILE:LINE: KEY: message` on stderr and exits 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli import coordinator_cmd
from harness.cli.common import config_errors_exit, usage_error
from harness.cli.doctor_cmd import doctor
from harness.cli.restore_cmd import restore
from harness.config.lab import Lab, load_lab
from harness.config.lab_models import WinRmTransport
from harness.domain.builds import release_name

lab_app = typer.Typer(
    name="lab",
    help="Check lab inventory files; run the virtual lab.",
    no_args_is_help=True,
    add_completion=False,
)


def _transport(lab: Lab, name: str) -> str:
    t = lab.duts[name].transport
    if isinstance(t, WinRmTransport):
        return f"winrm {t.scheme}:{t.port} {t.auth}"
    return f"ssh :{t.port} {t.shell}"


def _package_line(lab: Lab, name: str, read: bool) -> str:
    pkg = lab.driver_packages[name]
    line = f"  {name}: {pkg.path}"
    if not read:
        return line
    info = lab.read_package(name)
    services: dict[str, str] = {}
    for model in info.models:
        for s in model.services:
            value = (
                "absent" if s.dma_remapping_compatible is None else str(s.dma_remapping_compatible)
            )
            services.setdefault(s.name, value)
    listed = ", ".join(f"{n}={v}" for n, v in services.items()) or "(no services)"
    return f"{line}  DmaRemappingCompatible: {listed}"


def summary(lab: Lab, read_packages: bool = True) -> list[str]:
    lines = [f"Lab {lab.path}: OK", "", f"DUTs ({len(lab.duts)}):"]
    for name, dut in lab.duts.items():
        virtual = " [virtual]" if lab.is_virtual(name) else ""
        lines.append(
            f"  {name}{virtual}: {dut.address}, build {dut.os_build} "
            f"({release_name(dut.os_build)}), {_transport(lab, name)}, kdp {dut.kdp.declared.value}"
        )
        for port_name, port in dut.ports.items():
            lines.append(
                f"    port {port_name}: {port.kind.value} -> {port.device} "
                f"via {port.switch} channel {port.channel}"
            )
        lines.append(f"    capabilities: {', '.join(sorted(lab.capabilities(name)))}")
    lines.append(f"Instruments ({len(lab.instruments)}):")
    for name, inst in lab.instruments.items():
        lines.append(f"  {name}: {inst.kind} at {inst.resource}")
    lines.append(f"Devices ({len(lab.devices)}):")
    for name, dev in lab.devices.items():
        probe = dev.dma_probe.kind if dev.dma_probe else "none"
        lines.append(f"  {name}: {dev.hardware_id} ({dev.device_class}), DMA probe {probe}")
    lines.append(f"Driver packages ({len(lab.driver_packages)}):")
    lines.extend(_package_line(lab, name, read_packages) for name in lab.driver_packages)
    if lab.coordinator is not None:  # docs/coordinator.md; the password is a reference
        c = lab.coordinator
        lines.append(f"Coordinator: {c.url} (user {c.user or '-'}, sslmode {c.sslmode})")
    return lines


@lab_app.command("validate")
def validate(
    lab_file: Path = typer.Argument(..., metavar="LAB", help="The lab YAML file."),
    no_file_checks: bool = typer.Option(
        False, "--no-file-checks", help="Do not require referenced files (CA, host keys, INFs)."
    ),
) -> None:
    """Validate a lab file and print a summary."""
    with config_errors_exit():
        lab = load_lab(lab_file, check_files=not no_file_checks)
        lines = summary(lab, read_packages=not no_file_checks)
    for line in lines:
        typer.echo(line)


@lab_app.command("up")
def up(
    lab_file: Path = typer.Argument(..., metavar="LAB", help="A lab YAML file with 'virtual:'."),
    endpoints_file: Path | None = typer.Option(
        None, "--endpoints-file", help="Write the endpoints JSON (with credentials, 0600) here."
    ),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Keep the lab's keys and certificates here (default: a temp dir)."
    ),
) -> None:
    """Run the lab's virtual DUTs and instruments in the foreground until Ctrl-C."""
    import os

    from harness.virtual_lab.foreground import PASSWORD_ENV, serve

    with config_errors_exit():
        lab = load_lab(lab_file)
    if lab.virtual is None:
        raise usage_error(f"{lab.path}: the lab has no 'virtual:' section")
    code = serve(
        lab,
        endpoints_file=endpoints_file,
        workdir=workdir,
        password=os.environ.get(PASSWORD_ENV) or None,
        echo=lambda line: typer.echo(line),
    )
    raise typer.Exit(code)


lab_app.command("doctor")(doctor)
lab_app.command("restore")(restore)
coordinator_cmd.register_lab(lab_app)  # `lab coordinator init`, `lab status`


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
