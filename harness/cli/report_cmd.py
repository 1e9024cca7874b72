"""`harness report RUN_DIR [--no-history]`: render report.html of an existing run again.

    harness report reports/20261121-0300-nightly
    harness report reports/latest --no-history

Also rewrites matrix.html, matrix.json and changes.json (harness.report.run_pages), and the
qualification bundle (qualification/) when the run's plan has purpose
`qualification`. Prints the path of each file written. The trend history is the plan's
`<reports>/.history/<plan>.jsonl`: each render adds a point, so pass `--no-history` to re-render
an old run without adding one.

Exit codes: 0 written, 2 not a run directory (or unreadable run.json/journal),
3 the renderer failed (allure missing output, timed out, report too large for one file).
"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.common import ExitCode, config_errors_exit, usage_error
from harness.errors import InfrastructureError
from harness.report.qualification import write_bundle
from harness.report.render import history_file, render_report
from harness.report.run_dir import RunDir
from harness.report.run_pages import write_run_pages

QUALIFICATION = "qualification"


def report(
    run_dir: Path = typer.Argument(..., help="The run directory (reports/<run-id>)."),
    no_history: bool = typer.Option(
        False, "--no-history", help="Do not read or extend the plan's trend history."
    ),
    timeout: float = typer.Option(
        120.0, "--timeout", min=1.0, help="Seconds allowed for the renderer."
    ),
) -> None:
    """Render report.html (and the qualification bundle) of an existing run directory again."""
    if not run_dir.is_dir():
        raise usage_error(f"{run_dir}: not a directory")
    rd = RunDir(run_dir)
    with config_errors_exit():
        info = rd.read_info()
        history = None if no_history else history_file(run_dir.parent, info.plan_name)
        pages = write_run_pages(rd)
        try:
            html = render_report(
                rd, history=history, title=f"{info.plan_name} {info.run_id}", timeout_s=timeout
            )
        except InfrastructureError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(ExitCode.INFRASTRUCTURE) from None
        typer.echo(str(html))
        typer.echo(str(pages.matrix_html))
        if info.purpose == QUALIFICATION:
            typer.echo(str(write_bundle(rd)))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
