"""`harness run PLAN`: the main job.

    harness run testplans/smoke.yaml
    harness run testplans/nightly.yaml --lab lab_config/virtual.yaml -n auto
    harness run testplans/nightly.yaml --scenario 'tb-01.*.locked'
    harness run testplans/nightly.yaml --last-failed
    harness run testplans/smoke.yaml -- -x          # arguments after -- go to pytest

Inputs are checked before anything touches the lab (file, line and key; exit 2). The run
itself is `harness.cli.run_job.RunJob`: reports/<run-id>/ with journal.jsonl, junit.xml,
allure-results/, report.html (and qualification/ for qualification plans); exit code 0 all
passed, 1 a scenario failed, 2 usage or configuration error, 3 only infrastructure errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from harness.cli.common import config_errors_exit, usage_error
from harness.cli.plan_cmd import DEFAULT_LAB
from harness.cli.run_job import RunJob, not_passed, previous_runs
from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import expand, select


def _workers(value: str | None) -> str | None:
    if value is None or value == "auto" or (value.isdigit() and int(value) >= 0):
        return value
    raise usage_error(f"-n: expected a number of workers or 'auto', got {value!r}")


def run(
    ctx: typer.Context,
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="The test plan YAML file."),
    lab_file: Path = typer.Option(DEFAULT_LAB, "--lab", help="The lab YAML file."),
    duts: list[str] = typer.Option(None, "--dut", help="Only these DUTs (repeatable)."),
    scenario: str = typer.Option(None, "--scenario", help="Only scenario ids matching this glob."),
    last_failed: bool = typer.Option(
        False, "--last-failed", help="Only the scenarios that did not pass in the plan's last run."
    ),
    workers: str = typer.Option(
        None, "-n", "--workers", help="pytest-xdist workers: a number or 'auto' (one per DUT)."
    ),
    reports: Path = typer.Option(Path("reports"), "--reports", help="Where run directories go."),
) -> None:
    """Run a test plan against the lab: report, journal and exit code."""
    n = _workers(workers)
    with config_errors_exit():
        lab = load_lab(lab_file)
        plan = load_plan(plan_file)
        scenarios = expand(plan, lab)
    planned = {s.dut for s in scenarios}
    for name in duts or ():
        if name not in lab.duts:
            raise usage_error(f"--dut: no DUT '{name}' in {lab.path}")
        if name not in planned:
            raise usage_error(f"--dut: plan {plan.path} has no scenario on DUT '{name}'")
    chosen = select(scenarios, duts=duts or None, pattern=scenario)
    if not chosen:
        raise usage_error(
            f"--scenario: no scenario of {plan.path} matches {scenario!r}"
            + (f" on {', '.join(duts)}" if duts else "")
        )
    if last_failed:
        earlier = previous_runs(reports, plan.name)
        if not earlier:
            raise usage_error(f"--last-failed: no earlier run of plan '{plan.name}' in {reports}")
        with config_errors_exit():
            failed = set(not_passed(earlier[-1]))
        chosen = [s for s in chosen if s.id in failed]
        if not chosen:
            typer.echo(f"--last-failed: nothing failed in {earlier[-1].path}; nothing to run")
            raise typer.Exit(0)
    job = RunJob(
        lab=lab,
        plan=plan,
        scenarios=chosen,
        reports=reports,
        workers=n,
        pytest_args=list(ctx.args),
        argv=sys.argv[1:],
    )
    raise typer.Exit(job.execute())


def register(app: typer.Typer) -> None:
    app.command(
        "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": False}
    )(run)
