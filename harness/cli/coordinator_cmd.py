"""The coordinator's commands (docs/coordinator.md):

    harness lab coordinator init LAB        create or migrate the coordinator's schema
    harness lab status LAB [--json] [--watch SECONDS]
    harness history SCENARIO_ID [--lab LAB] [--json]

A lab without a `coordinator:` section is a usage error (exit 2); an unreachable coordinator
is exit 3. No command prints the coordinator's password (it is never in a message).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from harness.cli.common import ExitCode, config_errors_exit, print_json
from harness.config.lab import Lab, load_lab
from harness.errors import InfrastructureError
from harness.shipped import default_lab

coordinator_app = typer.Typer(
    name="coordinator",
    help="The lab's PostgreSQL coordinator: leases, queue, history.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def _connected(lab_file: Path) -> Iterator[tuple[Lab, Any]]:
    from harness.coordinator.connection import connect
    from harness.coordinator.run_leases import endpoint_of

    with config_errors_exit():
        lab = load_lab(lab_file, check_files=False)
        endpoint = endpoint_of(lab)
        try:
            conn = connect(endpoint)
        except InfrastructureError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(ExitCode.INFRASTRUCTURE) from None
        try:
            yield lab, conn
        finally:
            conn.close()


@coordinator_app.command("init")
def init(lab_file: Path = typer.Argument(..., metavar="LAB", help="The lab YAML file.")) -> None:
    """Create the coordinator's schema, or migrate it to this harness's version."""
    from harness.coordinator.schema import MIGRATIONS, migrate

    with _connected(lab_file) as (_lab, conn), config_errors_exit():
        applied = migrate(conn)
    for m in applied:
        typer.echo(f"applied migration {m.version}: {m.name}")
    typer.echo(f"coordinator schema at version {MIGRATIONS[-1].version}")


def status(
    lab_file: Path = typer.Argument(..., metavar="LAB", help="The lab YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    watch: float = typer.Option(
        None, "--watch", metavar="SECONDS", help="Print again every SECONDS until Ctrl-C."
    ),
    count: int = typer.Option(
        None, "--count", help="With --watch: stop after this many prints.", hidden=True
    ),
) -> None:
    """Each DUT's holder, queue, and last run with its outcomes."""
    from harness.coordinator.schema import require_current
    from harness.coordinator.status import lab_status, render

    with _connected(lab_file) as (lab, conn), config_errors_exit():
        require_current(conn, lab.coordinator.url if lab.coordinator else "")
        printed = 0
        while True:
            result = lab_status(conn, list(lab.duts))
            if as_json:
                print_json(result)
            else:
                for line in render(result):
                    typer.echo(line)
            printed += 1
            if watch is None or (count is not None and printed >= count):
                return
            try:
                time.sleep(max(0.2, watch))  # the refresh period the user asked for
            except KeyboardInterrupt:
                return
            if not as_json:
                typer.echo("")


def history(
    scenario_id: str = typer.Argument(..., metavar="SCENARIO_ID"),
    lab_file: Path = typer.Option(None, "--lab", help="The lab YAML file (its coordinator)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """A scenario's outcomes over time, across controllers (from the lab's coordinator)."""
    from harness.coordinator.history import scenario_history
    from harness.coordinator.status import _jsonable

    with _connected(lab_file or default_lab()) as (_lab, conn):
        rows = [_jsonable(r) or {} for r in scenario_history(conn, scenario_id, limit)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"{scenario_id}: no recorded outcome")
        return
    for r in rows:
        typer.echo(
            f"{r['started']}  {r['outcome']:<8} {r['dut']}  run {r['run_id']} ({r['plan']}, "
            f"{r['purpose']}, {r['host']}) {r['duration_s']:.1f} s"
            + (f"  {r['message']}" if r.get("message") else "")
        )


def register_lab(lab_app: typer.Typer) -> None:
    """`harness lab coordinator ...` and `harness lab status`."""
    lab_app.add_typer(coordinator_app, name="coordinator")
    lab_app.command("status")(status)


def register(app: typer.Typer) -> None:
    app.command("history")(history)
