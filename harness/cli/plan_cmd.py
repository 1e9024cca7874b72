"""`harness plan show PLAN [--lab LAB] [--json]`: a plan's scenarios with the oracle's expectations.

    harness plan show testplans/smoke.yaml
    harness plan show testplans/nightly.yaml --lab lab_config/virtual.yaml --json

The JSON shape is documented in docs/plan-json.md. A bad plan or lab prints
`error: FILE:LINE: KEY: message` on stderr and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from harness.cli.common import config_errors_exit, print_json
from harness.config.lab import Lab, load_lab
from harness.config.plan import Plan, load_plan
from harness.config.scenarios import Scenario, expand
from harness.domain.conditions import Conditions
from harness.domain.policy import Expectation, expect
from harness.lab.schedule import Schedule, package_drivers, schedule
from harness.shipped import LOCAL_LAB, default_lab

#: The lab of `--lab` when none is given: this one in the current directory if it exists, else
#: the virtual lab packaged with the harness (harness.shipped.default_lab).
DEFAULT_LAB = LOCAL_LAB
DEFAULT_LAB_HELP = (
    f"The lab YAML file (default: {DEFAULT_LAB} if it exists, else the packaged virtual lab)."
)

plan_app = typer.Typer(
    name="plan",
    help="Inspect test plans.",
    no_args_is_help=True,
    add_completion=False,
)


def expectations(scenarios: list[Scenario]) -> list[Expectation]:
    """The oracle's expectation per scenario (computed once per distinct conditions)."""
    cache: dict[Conditions, Expectation] = {}
    out = []
    for s in scenarios:
        c = s.oracle_conditions()
        e = cache.get(c)
        if e is None:
            e = cache[c] = expect(c)
        out.append(e)
    return out


def plan_json(
    plan: Plan,
    lab: Lab,
    scenarios: list[Scenario],
    expected: list[Expectation],
    sched: Schedule,
) -> dict[str, Any]:
    assigned = {s.id: d.dut for d in sched.duts for s in d.scenarios}
    duts = {d.dut: {"build": lab.duts[d.dut].os_build, **d.to_json()} for d in sched.duts}
    return {
        "plan": plan.name,
        "purpose": plan.purpose,
        "plan_file": plan.path,
        "lab_file": lab.path,
        "count": len(scenarios),
        "totals": sched.totals(),
        "duts": duts,
        "scenarios": [
            {
                "id": s.id,
                "dut": assigned[s.id],
                **({"pool": list(s.pool)} if s.pool else {}),
                "build": s.build,
                "device": s.device,
                "driver_package": s.driver_package,
                "port": {"name": s.port_name, "kind": s.port.value},
                "conditions": s.conditions_json(),
                "expectation": e.to_json(),
                "evidence_level": e.evidence_level(plan.checks).value,
            }
            for s, e in zip(scenarios, expected, strict=True)
        ],
    }


def _devpkey(e: Expectation) -> str:
    return f"{e.devpkey} (absent)" if e.devpkey_absent else str(e.devpkey)


def _plug(e: Expectation) -> str:
    if e.starts_at_plug:
        return "starts"
    return f"blocked (Code {e.problem_code})" if e.problem_code is not None else "blocked"


def _unlock(e: Expectation) -> str:
    if e.starts_after_unlock is None:
        return "-"
    return "starts" if e.starts_after_unlock else "blocked"


def _evidence(e: Expectation, checks: list[str]) -> str:
    """The scenario's evidence level (one definition: `Expectation.evidence_level`)."""
    return e.evidence_level(checks).value


def table(plan: Plan, scenarios: list[Scenario], expected: list[Expectation]) -> list[str]:
    header = ("SCENARIO", "DEVPKEY", "AT PLUG", "AFTER UNLOCK", "EVIDENCE")
    rows = [
        (s.id, _devpkey(e), _plug(e), _unlock(e), _evidence(e, list(plan.checks)))
        for s, e in zip(scenarios, expected, strict=True)
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"Plan {plan.name} ({plan.purpose}): {plan.path}", ""]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    lines.append(f"{len(scenarios)} scenarios")
    return lines


def schedule_lines(sched: Schedule) -> list[str]:
    """Per DUT: scenarios, reboots (run order, plan order, lower bound), estimated lab time."""
    lines = ["", "Schedule (estimated with the lab's cost model):"]
    for d in sched.duts:
        lines.append(
            f"  {d.dut}: {len(d.scenarios)} scenarios, {d.reboots} reboots "
            f"(plan order {d.plan_order_reboots}, lower bound {d.reboot_lower_bound}), "
            f"~{d.estimated_lab_s / 3600:.1f} h"
        )
    t = sched.totals()
    lines.append(
        f"  total: {t['reboots']} reboots, ~{t['estimated_lab_s'] / 3600:.1f} lab hours, "
        f"~{t['estimated_wall_s'] / 3600:.1f} h with the DUTs in parallel"
    )
    return lines


@plan_app.command("show")
def show(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="The test plan YAML file."),
    lab_file: Path | None = typer.Option(None, "--lab", help=DEFAULT_LAB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (docs/plan-json.md)."),
) -> None:
    """Expand a plan against a lab and show each scenario's expected outcome."""
    with config_errors_exit():
        lab = load_lab(lab_file or default_lab())
        plan = load_plan(plan_file)
        scenarios = expand(plan, lab)
        sched = schedule(scenarios, lab, package_drivers(lab, scenarios))
    expected = expectations(scenarios)
    if as_json:
        print_json(plan_json(plan, lab, scenarios, expected, sched))
        return
    typer.echo("\n".join([*table(plan, scenarios, expected), *schedule_lines(sched)]))


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
