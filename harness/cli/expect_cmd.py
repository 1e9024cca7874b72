"""`harness expect`: ask the oracle what Windows should do under given conditions.

harness expect --build 22631 --inf 2 --port external --session locked --json
harness expect --build 22631 --inf 2 --session locked --atlas reports/atlas/atlas.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import config_errors_exit, print_json, usage_error
from harness.domain.builds import BuildError
from harness.domain.conditions import (
    Conditions,
    DeviceKey,
    DmaGuardPolicy,
    InfValue,
    OnOff,
    PortKind,
    SessionState,
)
from harness.domain.policy import Expectation, expect
from harness.report.atlas import cell_key, describe_behaviour, find_cell, load_atlas

_DEVPKEY_MEANING = {
    0: "no DMA remapping directive applies; remapping is not enforced",
    1: "at least one driver on this device opted out of DMA remapping",
    2: "the drivers on this device are capable of DMA remapping",
}


def describe(e: Expectation) -> str:
    """The verdict in plain words, one fact per line with its evidence level."""
    ev = e.evidence
    c = e.conditions
    lines = [
        f"Conditions: build {c.build}, INF {'/'.join(v.value for v in c.inf)}, "
        f"per-device {c.device_remapping_supported.value}/{c.device_remapping_flags.value}, "
        f"{'graphics, ' if c.graphics else ''}{c.port.value} port, "
        f"Verifier DMA {OnOff.of(c.verifier_dma).value}, KDP {OnOff.of(c.kdp).value}, "
        f"DMAGuard policy {c.dmaguard.value}, plugged {c.session.value}",
        "",
    ]
    absent = " (Windows may leave the property absent)" if e.devpkey_absent else ""
    lines.append(
        f"{e.devpkey_key} = {e.devpkey}: {_DEVPKEY_MEANING[e.devpkey]}{absent}  [{ev['devpkey'].value}]"
    )
    if e.starts_at_plug:
        lines.append(f"At plug: the device starts.  [{ev['starts_at_plug'].value}]")
    else:
        lines.append(
            f"At plug: the device is blocked with problem code {e.problem_code}.  "
            f"[{ev['problem_code'].value}]"
        )
    lines.append(
        "While the session is locked it "
        + ("can" if e.dma_while_locked else "cannot")
        + f" do DMA.  [{ev['dma_while_locked'].value}]"
    )
    if e.starts_after_unlock is not None:
        lines.append(
            "After sign-in/unlock it "
            + ("starts." if e.starts_after_unlock else "stays blocked.")
            + f"  [{ev['starts_after_unlock'].value}]"
        )
    lines.append("")
    lines.append("Why:")
    lines.extend(f"  - {r}" for r in e.reasons)
    lines.append("")
    lines.append(
        "documented = Microsoft says so; inferred = reasoned from documented facts (a failure means "
        "the expectation may be wrong); unverified = undocumented, recorded but never failed."
    )
    return "\n".join(lines)


def expect_command(
    build: Annotated[int, typer.Option("--build", help="Windows build number, e.g. 22631.")],
    inf: Annotated[
        list[InfValue] | None,
        typer.Option(
            "--inf",
            help="DmaRemappingCompatible per driver of the stack (repeatable).",
            case_sensitive=False,
        ),
    ] = None,
    device_remapping_supported: Annotated[
        DeviceKey,
        typer.Option("--device-remapping-supported", help="Per-device RemappingSupported (24H2+)."),
    ] = DeviceKey.ABSENT,
    device_remapping_flags: Annotated[
        DeviceKey,
        typer.Option("--device-remapping-flags", help="Per-device RemappingFlags (24H2+)."),
    ] = DeviceKey.ABSENT,
    graphics: Annotated[
        bool, typer.Option("--graphics", help="The device is a Display-class (graphics) device.")
    ] = False,
    port: Annotated[PortKind, typer.Option("--port", case_sensitive=False)] = PortKind.EXTERNAL,
    verifier_dma: Annotated[
        OnOff,
        typer.Option(
            "--verifier-dma",
            help="Driver Verifier DMA verification targets the driver.",
            case_sensitive=False,
        ),
    ] = OnOff.OFF,
    kdp: Annotated[
        OnOff, typer.Option("--kdp", help="Kernel DMA Protection.", case_sensitive=False)
    ] = OnOff.ON,
    dmaguard: Annotated[
        DmaGuardPolicy,
        typer.Option("--dmaguard", help="DMAGuard DeviceEnumerationPolicy.", case_sensitive=False),
    ] = DmaGuardPolicy.ABSENT,
    session: Annotated[
        SessionState,
        typer.Option(
            "--session", help="Session state when the device is plugged.", case_sensitive=False
        ),
    ] = SessionState.UNLOCKED,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    atlas: Annotated[
        Path | None,
        typer.Option("--atlas", help="atlas.json (harness atlas): show what the lab measured."),
    ] = None,
) -> None:
    """What Windows should do with a device plugged under these conditions, and how sure that is."""
    conditions = Conditions(
        build=build,
        inf=tuple(inf) if inf else (InfValue.ABSENT,),
        device_remapping_supported=device_remapping_supported,
        device_remapping_flags=device_remapping_flags,
        graphics=graphics,
        port=port,
        verifier_dma=bool(verifier_dma),
        kdp=bool(kdp),
        dmaguard=dmaguard,
        session=session,
    )
    try:
        expectation = expect(conditions)
    except BuildError as exc:
        raise usage_error(f"--build: {exc}") from None
    measured = None
    if atlas is not None:
        with config_errors_exit():
            measured = find_cell(load_atlas(atlas), _atlas_key(conditions))
    if as_json:
        data = expectation.to_json()
        if atlas is not None:
            data["measured"] = measured
        print_json(data)
        return
    typer.echo(describe(expectation))
    if atlas is not None:
        typer.echo("")
        typer.echo(measured_text(measured, atlas))


def _atlas_key(c: Conditions) -> dict[str, object]:
    """The atlas key of the conditions given on the command line (journal spelling)."""
    return cell_key(
        c.build,
        {
            "inf": [v.value for v in c.inf],
            "device_remapping_supported": c.device_remapping_supported.value,
            "device_remapping_flags": c.device_remapping_flags.value,
            "graphics": c.graphics,
            "port": c.port.value,
            "verifier_dma": OnOff.of(c.verifier_dma).value,
            "kdp": OnOff.of(c.kdp).value,
            "dmaguard": c.dmaguard.value,
            "session": c.session.value,
        },
    )


def measured_text(cell: dict[str, object] | None, atlas: Path) -> str:
    """What the lab measured for this cell, beside the oracle's answer above."""
    if cell is None:
        return f"Measured ({atlas}): never observed in this lab."
    lines = [f"Measured ({atlas}): {cell['observations']} observation(s)"]
    for b in cell["behaviours"]:  # type: ignore[attr-defined]
        mark = "agrees" if b["agrees"] else "DISAGREES with the oracle"
        lines.append(
            f"  - {describe_behaviour(b['observed'])}: {b['count']}× on "
            f"{', '.join(b['duts'])}, {len(b['runs'])} run(s), {b['first'][:10]} … "
            f"{b['last'][:10]} ({mark})"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("expect")(expect_command)
