"""`harness inf show FILE [--json]`: what an INF declares about DMA remapping.

    harness inf show driver.inf
    harness inf show driver.inf --json

A missing file or a malformed INF prints `error: FILE[:LINE]: message` on stderr, exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.common import print_json, usage_error
from harness.domain.inf import InfError, InfInfo, read_inf

inf_app = typer.Typer(
    name="inf",
    help="Read driver INF files.",
    no_args_is_help=True,
    add_completion=False,
)


def _text(value: object) -> str:
    return "(absent)" if value is None else str(value)


def _summary(path: str, info: InfInfo) -> list[str]:
    lines = [
        f"INF:             {path}",
        f"Class:           {_text(info.class_name)} {info.class_guid or ''}".rstrip(),
        f"Graphics:        {'yes (DMA remapping not supported)' if info.graphics else 'no'}",
        f"Provider:        {_text(info.provider)}",
        f"Driver version:  {_text(info.driver_ver)}",
        f"Catalog:         {_text(info.catalog_file)}",
        f"Models:          {len(info.models)}",
    ]
    for model in info.models:
        lines.append("")
        lines.append(f"- {model.description} [{model.install_section}]")
        lines.append(f"    hardware IDs: {', '.join(model.hardware_ids) or '(none)'}")
        if not model.services:
            lines.append("    services: (none)")
        for service in model.services:
            lines.append(
                f"    service {service.name}: binary {_text(service.binary)}, "
                f"DmaRemappingCompatible {_text(service.dma_remapping_compatible)}"
            )
        dma = model.dma_management
        lines.append(
            f"    DMA Management: RemappingSupported {_text(dma.remapping_supported)}, "
            f"RemappingFlags {_text(dma.remapping_flags)}"
        )
    return lines


@inf_app.command("show")
def show(
    file: Path = typer.Argument(..., help="The INF (or .inx) file to read."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show the class, models, services and DMA remapping directives of an INF file."""
    try:
        info = read_inf(file)
    except InfError as exc:
        raise usage_error(str(exc)) from None
    except OSError as exc:
        raise usage_error(f"{file}: cannot read: {exc.strerror or exc}") from None
    if as_json:
        print_json(info.to_json())
        return
    for line in _summary(str(file), info):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(inf_app, name="inf")
