"""`harness atlas [RUN_DIR|REPORTS ...] [--lab LAB] [--out DIR] [--json]`: the measured truth
table.

    harness atlas                              # every run under reports/
    harness atlas reports/ /mnt/lab2/reports --out atlas/
    harness atlas --lab my_lab.yaml --out atlas/   # every run the lab's coordinator recorded
    harness expect --build 22631 --inf 2 --session locked --atlas atlas/atlas.json

Writes `atlas.json` and `atlas.html` into `--out` (default: `<first folder>/atlas`) and prints
one line per cell where Windows disagreed with the oracle. Exit codes: 0 written, 2 a path that
is neither a run directory nor a reports folder (or a lab without a coordinator), 3 a coordinator
that cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness.cli.common import config_errors_exit, print_json
from harness.cli.coordinator_records import runs_from_coordinator
from harness.config.lab import load_lab
from harness.errors import InfrastructureError
from harness.private_files import private_dir, write_private
from harness.report.atlas import build_atlas, describe_behaviour
from harness.report.atlas_html import conditions_text, render_atlas_html


def atlas_command(
    paths: list[Path] | None = typer.Argument(
        None, help="run directories or reports folders (default: reports)", show_default=False
    ),
    out: Path | None = typer.Option(None, "--out", help="folder for atlas.json and atlas.html"),
    as_json: bool = typer.Option(False, "--json", help="print the atlas as JSON"),
    lab_file: Path | None = typer.Option(
        None,
        "--lab",
        help="also every run the lab's coordinator recorded, from every controller",
        show_default=False,
    ),
) -> None:
    """Aggregate every observation across runs into the measured truth table."""
    sources = paths if paths else ([] if lab_file else [Path("reports")])
    with config_errors_exit():
        try:
            more = runs_from_coordinator(load_lab(lab_file)) if lab_file else []
        except InfrastructureError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(3) from None
        atlas = build_atlas(sources, more)
    first = sources[0] if sources else Path("reports")
    folder = out or ((first.parent if (first / "run.json").is_file() else first) / "atlas")
    private_dir(folder)
    data = atlas.to_json()
    write_private(folder / "atlas.json", json.dumps(data, indent=1) + "\n")
    write_private(folder / "atlas.html", render_atlas_html(atlas))
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"{len(atlas.runs)} runs, {data['observations']} observations, {len(atlas.cells)} cells"
    )
    for cell in atlas.cells:
        for b in cell.behaviours:
            if not b.agrees:
                typer.echo(
                    f"  disagrees: build {cell.key['build']}, {conditions_text(cell.key)}: "
                    f"expected {describe_behaviour(cell.expected)} ({cell.evidence_level}); "
                    f"measured {describe_behaviour(b.observed)} {b.count}× on {', '.join(b.duts)}"
                )
    typer.echo(f"atlas: {folder / 'atlas.html'}")


def register(app: typer.Typer) -> None:
    app.command("atlas")(atlas_command)
