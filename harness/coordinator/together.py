"""One plan, several controllers (`harness run --together NAME`): the plan's boot-state groups
are *units* in a shared queue, and each controller, holding one DUT of the pool, takes units
one at a time until none is left.

A unit is claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so two controllers never take the
same one and neither waits for the other's claim. A claimed unit names its controller's server
backend; a unit whose controller died (its connection gone) goes back to the queue and is
claimed again whole. A unit is done once its run has ended, whatever its outcomes: every
scenario runs exactly once unless its controller dies in the middle of its unit.

The first controller to arrive publishes the units; the others must bring the same ones (the
same plan, lab and selection), else their run is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.coordinator.queue import ALIVE
from harness.errors import ConfigError


@dataclass(frozen=True)
class Unit:
    number: int
    scenarios: list[str]


def _effort_key(effort: str) -> int:
    digest = hashlib.sha256(b"dma-lab-harness/together\0" + effort.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def publish(conn: Any, effort: str, units: list[list[str]]) -> bool:
    """Put the units in the queue; False if they were there already (the same ones), a
    ConfigError if the effort exists with other units."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_effort_key(effort),))
        cur.execute(
            "SELECT unit, scenarios FROM shared_units WHERE effort = %s ORDER BY unit", (effort,)
        )
        existing = [(int(u), list(s)) for u, s in cur.fetchall()]
        if existing:
            if existing != list(enumerate(units, 1)):
                raise ConfigError(
                    f"--together {effort}: the controllers already on it run other scenarios "
                    "(the same plan, lab and selection are needed, or another name)"
                )
            return False
        for number, ids in enumerate(units, 1):
            cur.execute(
                "INSERT INTO shared_units (effort, unit, scenarios) VALUES (%s, %s, %s)",
                (effort, number, ids),
            )
        return True


def claim(conn: Any, effort: str, me: dict[str, Any], dut: str) -> Unit | None:
    """The next unit to run (waiting, or left by a dead controller), claimed for `me`."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT unit, scenarios FROM shared_units w WHERE effort = %s AND (state = 'todo' "
            f"OR (state = 'claimed' AND NOT {ALIVE.format(t='w')})) ORDER BY unit LIMIT 1 "
            "FOR UPDATE SKIP LOCKED",
            (effort,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(
            "UPDATE shared_units SET state = 'claimed', backend_pid = %s, backend_start = %s, "
            "host = %s, pid = %s, dut = %s, claimed = now() WHERE effort = %s AND unit = %s",
            (me["backend_pid"], me["backend_start"], me["host"], me["pid"], dut, effort, row[0]),
        )
        return Unit(int(row[0]), list(row[1]))


def finish(conn: Any, effort: str, unit: int, run_id: str, exit_code: int) -> None:
    conn.execute(
        "UPDATE shared_units SET state = 'done', run_id = %s, exit_code = %s, finished = now() "
        "WHERE effort = %s AND unit = %s",
        (run_id, exit_code, effort, unit),
    )


def progress(conn: Any, effort: str) -> dict[str, int]:
    """Units per state."""
    rows = conn.execute(
        "SELECT state, count(*) FROM shared_units WHERE effort = %s GROUP BY state", (effort,)
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def work_through(
    conn: Any,
    effort: str,
    me: dict[str, Any],
    dut: str,
    run_unit: Callable[[Unit], tuple[str, int]],
    echo: Callable[[str], None],
) -> list[int]:
    """Claim and run units until none is left; the exit codes of the runs made here."""
    codes: list[int] = []
    while (unit := claim(conn, effort, me, dut)) is not None:
        echo(f"together {effort}: unit {unit.number} ({len(unit.scenarios)} scenarios) on {dut}")
        run_id, code = run_unit(unit)
        finish(conn, effort, unit.number, run_id, code)
        codes.append(code)
    return codes
