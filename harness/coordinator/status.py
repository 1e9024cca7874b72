"""`harness lab status`: every DUT of the lab with its holder, its queue, and its last run
(outcomes counted, exit code, and the quarantine reason if that run quarantined the DUT).

A holder is shown only while its connection lives; a row left by a dead holder shows as free.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.coordinator import queue
from harness.coordinator.leases import holder_text, live_holder


def lab_status(conn: Any, duts: list[str]) -> list[dict[str, Any]]:
    """One record per DUT: `holder` (or None), `queue` (in serving order), `last_run`."""
    waiting = queue.waiting(conn)
    out: list[dict[str, Any]] = []
    for dut in duts:
        out.append(
            {
                "dut": dut,
                "holder": _jsonable(live_holder(conn, dut)),
                "queue": [_jsonable(w) for w in waiting if w["dut"] == dut],
                "last_run": _jsonable(_last_run(conn, dut)),
            }
        )
    return out


def _last_run(conn: Any, dut: str) -> dict[str, Any] | None:
    """The newest run with an outcome on `dut`: run id, plan, when, its outcomes counted."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT o.run_id, r.plan, r.purpose, r.host, r.finished, r.exit_code, "
            "max(o.started) AS last_scenario, "
            "jsonb_object_agg(o.outcome, o.n) AS outcomes FROM ("
            "  SELECT run_id, outcome, count(*) AS n, max(started) AS started "
            "  FROM scenario_outcomes WHERE dut = %s GROUP BY run_id, outcome) o "
            "JOIN runs r USING (run_id) GROUP BY o.run_id, r.plan, r.purpose, r.host, "
            "r.finished, r.exit_code ORDER BY max(o.started) DESC LIMIT 1",
            (dut,),
        )
        cols = [d.name for d in cur.description or ()]
        row = cur.fetchone()
        if not row:
            return None
        last = dict(zip(cols, row, strict=True))
        # the journal line whose outcome quarantined the DUT carries the reason
        cur.execute(
            "SELECT entry->>'quarantined' FROM scenario_outcomes WHERE run_id = %s AND dut = %s "
            "AND entry ? 'quarantined' ORDER BY started LIMIT 1",
            (last["run_id"], dut),
        )
        q = cur.fetchone()
        last["quarantined"] = q[0] if q else None
        return last


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def render(status: list[dict[str, Any]]) -> list[str]:
    """The status as text lines (times are ISO 8601 UTC)."""
    lines: list[str] = []
    for s in status:
        h = s["holder"]
        lines.append(f"{s['dut']}: " + ("free" if h is None else f"held by {_text(h)}"))
        for i, w in enumerate(s["queue"], 1):
            lines.append(f"  queue {i}: {_text(w)}, waiting since {w.get('enqueued')}")
        last = s["last_run"]
        if last is None:
            lines.append("  last run: none recorded")
        else:
            counts = ", ".join(f"{k} {v}" for k, v in sorted((last["outcomes"] or {}).items()))
            ended = f"exit {last['exit_code']}" if last.get("exit_code") is not None else "running"
            lines.append(
                f"  last run: {last['run_id']} ({last['plan']}, {last['purpose']}, "
                f"on {last['host']}): {counts}; {ended}"
            )
            if last.get("quarantined"):
                lines.append(f"  quarantined in that run: {last['quarantined']}")
    return lines


def _text(row: dict[str, Any]) -> str:
    parsed = {
        k: (datetime.fromisoformat(v) if k in ("since", "heartbeat") and v else v)
        for k, v in row.items()
    }
    return holder_text(parsed)
