"""`harness init DIR [--force]`: a starter lab directory of one's own.

    harness init my-lab
    cd my-lab && harness run testplans/smoke.yaml

Writes, from the files packaged with the harness (harness.shipped):

    DIR/lab_config/virtual.yaml        the virtual lab (the default lab inside DIR)
    DIR/lab_config/virtual_pool.yaml   a virtual pool of four interchangeable DUTs
    DIR/lab_config/example_lab.yaml    a commented template of a real lab
    DIR/lab_config/packages/           the virtual lab's signed driver packages
    DIR/testplans/*.yaml               the shipped plans
    DIR/testplans/test_scenarios.py    the pytest module `harness run` runs the plans with
    DIR/schemas/{lab,plan}.schema.json the JSON Schemas the YAML files name for editors

An existing file is never overwritten unless `--force` is given: without it, the first one found
is named and nothing is written (exit 2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

from harness.cli.common import usage_error
from harness.shipped import packaged_lab_dir, packaged_testplans

#: The lab files copied into DIR/lab_config/ (besides packages/).
LAB_FILES = ("virtual.yaml", "virtual_pool.yaml", "example_lab.yaml")
SCHEMAS = ("lab", "plan")


def starter_files() -> list[tuple[Path, Path | str]]:
    """(path relative to DIR, packaged source file or generated text), in writing order."""
    out: list[tuple[Path, Path | str]] = []
    labs = packaged_lab_dir()
    for name in LAB_FILES:
        out.append((Path("lab_config") / name, labs / name))
    for f in sorted((labs / "packages").iterdir()):
        if f.is_file():
            out.append((Path("lab_config") / "packages" / f.name, f))
    plans = packaged_testplans()
    for f in sorted(plans.glob("*.yaml")):
        out.append((Path("testplans") / f.name, f))
    out.append((Path("testplans") / "test_scenarios.py", plans / "test_scenarios.py"))
    from harness.cli.schema_cmd import json_schema

    for kind in SCHEMAS:
        text = json.dumps(json_schema(kind), indent=2) + "\n"
        out.append((Path("schemas") / f"{kind}.schema.json", text))
    return out


def init(
    directory: Path = typer.Argument(..., metavar="DIR", help="The directory to write into."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Write a starter lab directory: the virtual lab, a real-lab template and the plans."""
    files = starter_files()
    if directory.exists() and not directory.is_dir():
        raise usage_error(f"{directory}: exists and is not a directory")
    for rel, _ in files:
        target = directory / rel
        if target.is_dir() or (target.exists() and not force):
            raise usage_error(
                f"{target}: already exists (use --force to overwrite); nothing written"
            )
    for rel, source in files:
        target = directory / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                target.write_text(source, encoding="utf-8")
        except OSError as exc:
            raise usage_error(f"{target}: cannot write: {exc.strerror or exc}") from None
    typer.echo(f"wrote {len(files)} files into {directory}:")
    for top in ("lab_config", "testplans", "schemas"):
        count = sum(1 for rel, _ in files if rel.parts[0] == top)
        typer.echo(f"  {directory / top}/  ({count} files)")
    typer.echo("next:")
    typer.echo(f"  cd {directory}")
    typer.echo("  harness run testplans/smoke.yaml          # the virtual lab, no hardware")
    typer.echo("  harness lab validate lab_config/example_lab.yaml --no-file-checks")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
