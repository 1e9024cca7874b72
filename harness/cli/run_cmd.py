"""`harness run PLAN`: the main job.

    harness run testplans/smoke.yaml
    harness run testplans/nightly.yaml --lab lab_config/virtual.yaml -n auto
    harness run testplans/nightly.yaml --scenario 'tb-01.*.locked'
    harness run testplans/nightly.yaml --last-failed
    harness run testplans/smoke.yaml -- -x          # arguments after -- go to pytest
    harness run testplans/smoke.yaml -- -p pytest_randomly  # a plugin the run would not load
    harness run --resume reports/20261121T101500Z-nightly
    harness run testplans/smoke.yaml --no-report    # no report.html now: `harness report` later

pytest runs with the harness's own plugins only (scenario_process.py): other plugins installed
in the same environment are not loaded unless named after `--`.

`--resume RUN_DIR` continues a run whose controller was killed: the same plan, lab, selection,
-n and pytest arguments (from its run.json), only the scenarios without a final outcome in its
journal, into the same run directory (see run_job.py and resume.py). It takes no PLAN and no
selection option; a changed plan or lab file is refused (exit 2), as is a run being run right
now; processes of the killed attempt that outlive their teardown deadline are exit 3.

Inputs are checked before anything touches the lab (file, line and key; exit 2). The run
itself is `harness.cli.run_job.RunJob`: reports/<run-id>/ with journal.jsonl, junit.xml,
allure-results/, report.html (not with `--no-report`: the Allure render takes a few seconds;
`harness report RUN_DIR` renders it later) and qualification/ for qualification plans; exit
code 0 all passed, 1 a scenario failed, 2 usage or configuration error, 3 only infrastructure
errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from harness.cli.common import ExitCode, config_errors_exit, usage_error
from harness.cli.plan_cmd import DEFAULT_LAB_HELP
from harness.cli.resume import NEWEST, claim, newest_interrupted, resumable
from harness.cli.run_attempts import RunBusy
from harness.cli.run_job import RunJob
from harness.cli.run_support import check_writable, not_passed, previous_runs, scenario_tests
from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import expand, select
from harness.errors import InfrastructureError
from harness.lab.schedule import package_drivers, schedule
from harness.shipped import default_lab


def native_windows() -> bool:
    """The controller runs on native Windows (WSL2 reports posix)."""
    return os.name == "nt"


def _workers(value: str | None) -> str | None:
    if value is None or value == "auto" or (value.isdigit() and int(value) >= 0):
        return value
    raise usage_error(f"-n: expected a number of workers or 'auto', got {value!r}")


def run(
    ctx: typer.Context,
    plan_file: Path = typer.Argument(None, metavar="PLAN", help="The test plan YAML file."),
    lab_file: Path = typer.Option(None, "--lab", help=DEFAULT_LAB_HELP),
    duts: list[str] = typer.Option(None, "--dut", help="Only these DUTs (repeatable)."),
    scenario: str = typer.Option(None, "--scenario", help="Only scenario ids matching this glob."),
    last_failed: bool = typer.Option(
        False, "--last-failed", help="Only the scenarios that did not pass in the plan's last run."
    ),
    workers: str = typer.Option(
        None, "-n", "--workers", help="pytest-xdist workers: a number or 'auto' (one per DUT)."
    ),
    reports: Path = typer.Option(Path("reports"), "--reports", help="Where run directories go."),
    resume: Path = typer.Option(
        None,
        "--resume",
        metavar="RUN_DIR",
        help="Continue a killed run: only its scenarios without a final outcome.",
    ),
    wait: str = typer.Option(
        None,
        "--wait",
        metavar="DURATION",
        help="With a lab coordinator: wait up to DURATION (2h, 30m, 90s) for DUTs that other "
        "runs hold, in priority order (docs/coordinator.md).",
    ),
    together: str = typer.Option(
        None,
        "--together",
        metavar="NAME",
        help="With a lab coordinator: run the plan's pool together with the other controllers "
        "started with the same NAME, plan and selection (docs/coordinator.md).",
    ),
    no_report: bool = typer.Option(
        False,
        "--no-report",
        help="Do not render report.html (Allure) at the end; every other file is written. "
        "Render it later with `harness report RUN_DIR`.",
    ),
) -> None:
    """Run a test plan against the lab: report, journal and exit code."""
    if native_windows():
        raise usage_error(
            "harness run needs a POSIX controller (Linux, macOS or WSL2): it relies on process "
            "groups, signals and descriptor passing that native Windows does not have"
        )
    if resume is not None:
        given = [
            name
            for name, value in (
                ("PLAN", plan_file),
                ("--lab", lab_file),
                ("--dut", duts),
                ("--scenario", scenario),
                ("--last-failed", last_failed),
                ("-n", workers),
                ("--wait", wait),
                ("--together", together),
                ("arguments after --", ctx.args),
            )
            if value
        ]
        if given:
            raise usage_error(
                f"--resume takes the plan, lab and selection of the run it continues; "
                f"not with {', '.join(given)}"
            )
        if str(resume) == NEWEST:
            with config_errors_exit():
                resume = newest_interrupted(reports)
            typer.echo(f"--resume: the newest interrupted run is {resume}")
        raise typer.Exit(_resume(resume, render_html=not no_report))
    if plan_file is None:
        raise usage_error("missing PLAN (or --resume RUN_DIR)")
    if last_failed and lab_file is None:
        lab_file, duts, scenario = _last_run_selection(reports, plan_file, duts, scenario)
    lab_file = lab_file or default_lab()
    n = _workers(workers)
    with config_errors_exit():
        lab = load_lab(lab_file)
        plan = load_plan(plan_file)
        scenarios = expand(plan, lab)
        scenario_tests(Path(plan.path))  # the test module pytest will run, before any lab action
    planned = {d for s in scenarios for d in s.eligible}  # a pool's scenarios: any of its DUTs
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
    if together is not None:  # one plan, several controllers (harness/cli/together_cmd.py)
        from harness.cli.together_cmd import run_together_cmd

        with config_errors_exit():
            check_writable(reports)
        raise typer.Exit(
            run_together_cmd(
                lab=lab,
                plan=plan,
                chosen=chosen,
                effort=together,
                wait=wait,
                reports=reports,
                pytest_args=list(ctx.args),
                filters={"duts": duts or [], "scenario": scenario, "last_failed": last_failed},
                render_html=not no_report,
            )
        )
    with config_errors_exit():  # each scenario's DUT, in run order (harness/lab/schedule.py)
        planned = schedule(chosen, lab, package_drivers(lab, chosen))
        chosen = planned.ordered()
    if n is not None and n.isdigit() and int(n) > len(planned.duts):  # a worker per DUT at most
        typer.echo(f"-n {n}: capped at {len(planned.duts)}, the number of DUTs that run")
        n = str(len(planned.duts))
    with config_errors_exit():  # a read-only or full reports folder: before any lab action
        check_writable(reports)
    job = RunJob(
        estimates={d.dut: d.estimated_lab_s for d in planned.duts},
        lab=lab,
        plan=plan,
        scenarios=chosen,
        reports=reports,
        workers=n,
        pytest_args=list(ctx.args),
        argv=sys.argv[1:],
        filters={"duts": duts or [], "scenario": scenario, "last_failed": last_failed},
        render_html=not no_report,
    )
    raise typer.Exit(_execute(job, [d.dut for d in planned.duts], wait))


def _execute(job: RunJob, duts: list[str], wait: str | None) -> int:
    """The job, under lab-wide leases of its DUTs when the lab has a coordinator."""
    if job.lab.coordinator is None:
        if wait is not None:
            raise usage_error(f"--wait: the lab {job.lab.path} has no coordinator to wait on")
        return job.execute()
    from harness.coordinator.leases import DutBusy
    from harness.coordinator.run_leases import parse_duration, run_with_leases

    with config_errors_exit():
        wait_s = parse_duration(wait) if wait is not None else None
        try:
            return run_with_leases(
                job.lab,
                duts,
                job.plan.name,
                job.plan.purpose,
                wait_s,
                job.reports,
                job.execute,
                echo=lambda line: typer.echo(line),
                # a killed controller's pytest child may still be tearing the DUT down
                drive_wait_s=job.plan.timeouts.teardown_s + 60,
            )
        except (DutBusy, InfrastructureError) as exc:
            typer.echo(f"error: {exc}", err=True)
            return ExitCode.INFRASTRUCTURE


def _last_run_selection(
    reports: Path, plan_file: Path, duts: list[str] | None, scenario: str | None
) -> tuple[Path | None, list[str] | None, str | None]:
    """--last-failed without --lab: the lab (and, unless given, the DUT and scenario filters)
    of the plan's last run, so its failures are rerun where they failed."""
    with config_errors_exit():
        plan = load_plan(plan_file)
    earlier = previous_runs(reports, plan.name)
    if not earlier:
        return None, duts, scenario
    with config_errors_exit():
        info = earlier[-1].read_info()
    lab = info.resolve("lab")
    filters = dict(info.filters or {})
    typer.echo(f"--last-failed: the lab of run {info.run_id}: {lab}")
    return lab, duts or list(filters.get("duts") or []) or None, scenario or filters.get("scenario")


def _resume(run_dir: Path, *, render_html: bool = True) -> int:
    with config_errors_exit():
        r = resumable(run_dir)
        scenario_tests(Path(r.plan.path))  # before any lab action
        check_writable(r.run_dir.path, "--resume")
    try:
        lock = claim(r, sys.stdout)
    except RunBusy as exc:
        raise usage_error(f"cannot resume: {exc}") from None
    except InfrastructureError as exc:
        typer.echo(f"error: {exc}", err=True)
        return ExitCode.INFRASTRUCTURE
    # What is left is computed only now: the old attempt's processes are gone, so nothing they
    # were still finishing is run (and journaled) a second time.
    try:
        with config_errors_exit():
            r = resumable(run_dir)
    except BaseException:
        lock.release()
        raise
    filters = dict(r.info.filters or {})
    remaining = r.remaining
    estimates: dict[str, float] = {}
    if remaining:
        with config_errors_exit():
            planned = schedule(remaining, r.lab, package_drivers(r.lab, remaining))
            remaining = planned.ordered()
            estimates = {d.dut: d.estimated_lab_s for d in planned.duts}
    job = RunJob(
        estimates=estimates,
        lab=r.lab,
        plan=r.plan,
        scenarios=remaining,
        reports=r.run_dir.path.parent,
        workers=r.info.workers,
        pytest_args=list(r.info.pytest_args),
        argv=sys.argv[1:],
        resume=(r.run_dir, r.info, lock),
        totals=r.totals,
        filters=filters,
        render_html=render_html,
    )
    return _execute(job, list(estimates), None)


def register(app: typer.Typer) -> None:
    app.command(
        "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": False}
    )(run)
