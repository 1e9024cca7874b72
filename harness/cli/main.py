"""Entry point of the `harness` console script: assembles the command groups.

harness expect --build 22631 --inf 2 --port external --session locked --json
harness inf show driver.inf --json
harness lab validate lab_config/virtual.yaml
harness plan show testplans/smoke.yaml --lab lab_config/virtual.yaml --json
"""

from __future__ import annotations

import sys

import typer

from harness import __version__

app = typer.Typer(
    name="harness",
    help="Hardware-in-the-loop harness for Windows PCIe drivers under Kernel DMA Protection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Hardware-in-the-loop harness for Windows PCIe drivers under Kernel DMA Protection."""


def _register() -> None:
    # Imported here so each command module registers itself on `app` exactly once.
    from harness.cli import commands

    commands.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    from harness.cli.resume import bare_resume

    app(args=bare_resume(sys.argv[1:] if argv is None else argv))
