"""Run history in the coordinator: runs, scenario outcomes (each journal line) and DUT facts,
so several controllers' runs read as one history (`harness history SCENARIO_ID`).

The controller finds its run directory (the one whose run.json names this process as an
attempt), then copies what the run journals while it runs: `sync()` is called on every lease
heartbeat and once at the end, and inserts only what is new (rows are keyed, so a repeated
sync writes nothing twice). Files are read as plain JSON; nothing here knows the report layer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.coordinator.connection import Endpoint, connect, who


def find_run_dir(reports: Path, pid: int, not_before: float) -> Path | None:
    """The run directory under `reports` whose run.json records an attempt by process `pid`
    (written since `not_before`, a time.time())."""
    if not reports.is_dir():
        return None
    for run_json in reports.glob("*/run.json"):
        try:
            if run_json.stat().st_mtime < not_before:
                continue
            info = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if any(a.get("pid") == pid for a in info.get("attempts") or () if isinstance(a, dict)):
            return run_json.parent
    return None


@dataclass
class HistoryWriter:
    """Copies one run's records into the coordinator (its own connection, not the lease's)."""

    endpoint: Endpoint
    lab: str
    reports: Path
    started: float  # time.time() at the controller's start
    run_dir: Path | None = None
    _journal_lines: int = 0
    _facts: dict[str, float] = field(default_factory=dict)
    _conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.endpoint)
        return self._conn

    def sync(self, exit_code: int | None = None) -> str | None:
        """Write what is new; the run id once the run directory is known."""
        if self.run_dir is None:
            self.run_dir = find_run_dir(self.reports, os.getpid(), self.started - 1)
            if self.run_dir is None:
                return None
        info = json.loads((self.run_dir / "run.json").read_text(encoding="utf-8"))
        run_id = str(info["run_id"])
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            me = who()
            cur.execute(
                "INSERT INTO runs (run_id, plan, purpose, lab, host, os_user, duts, started) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
                (
                    run_id,
                    str(info.get("plan_name") or info.get("plan")),
                    str(info.get("purpose") or ""),
                    self.lab,
                    me["host"],
                    me["os_user"],
                    sorted({s.split(".", 1)[0] for s in info.get("scenarios") or ()}),
                    info.get("started"),
                ),
            )
            self._journal(cur, run_id)
            self._dut_facts(cur, run_id)
            if exit_code is not None:
                cur.execute(
                    "UPDATE runs SET finished = now(), exit_code = %s WHERE run_id = %s",
                    (exit_code, run_id),
                )
        return run_id

    def _journal(self, cur: Any, run_id: str) -> None:
        assert self.run_dir is not None
        path = self.run_dir / "journal.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines[self._journal_lines :]:
            try:
                entry = json.loads(line)
            except ValueError:  # a line being written: read it next time
                break
            cur.execute(
                "INSERT INTO scenario_outcomes (run_id, scenario, dut, outcome, started, "
                "duration_s, message, entry) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) "
                "ON CONFLICT DO NOTHING",
                (
                    run_id,
                    entry["scenario"],
                    entry["dut"],
                    entry["outcome"],
                    entry["started"],
                    float(entry.get("duration_s") or 0),
                    str(entry.get("message") or "")[:2000],
                    json.dumps(entry),
                ),
            )
            self._journal_lines += 1

    def _dut_facts(self, cur: Any, run_id: str) -> None:
        assert self.run_dir is not None
        folder = self.run_dir / "facts"
        for f in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            mtime = f.stat().st_mtime
            if self._facts.get(f.stem) == mtime:
                continue
            try:
                facts = json.loads(f.read_text(encoding="utf-8"))
            except ValueError:
                continue
            cur.execute(
                "INSERT INTO dut_facts (run_id, dut, facts) VALUES (%s, %s, %s::jsonb) ON CONFLICT "
                "(run_id, dut) DO UPDATE SET facts = EXCLUDED.facts, recorded = now()",
                (run_id, f.stem, json.dumps(facts)),
            )
            self._facts[f.stem] = mtime

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def scenario_history(conn: Any, scenario: str, limit: int = 50) -> list[dict[str, Any]]:
    """A scenario's outcomes, newest first, with the run, plan, controller and duration."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT o.started, o.outcome, o.dut, o.run_id, r.plan, r.purpose, r.host, "
            "o.duration_s, o.message FROM scenario_outcomes o JOIN runs r USING (run_id) "
            "WHERE o.scenario = %s ORDER BY o.started DESC LIMIT %s",
            (scenario, limit),
        )
        cols = [d.name for d in cur.description or ()]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def previous_run_records(
    conn: Any, plan: str, run_id: str, started: str, duts: list[str]
) -> dict[str, Any] | None:
    """The newest other run of `plan` on any controller of this lab that started before
    `started` (ISO-8601), shared at least one DUT and recorded a scenario: its id, its journal
    entries in the order they were written and its DUT facts; None when there is none."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT r.run_id, r.host FROM runs r WHERE r.plan = %s AND r.run_id <> %s "
            "AND r.started < %s::timestamptz AND r.duts && %s::text[] "
            "AND EXISTS (SELECT 1 FROM scenario_outcomes o WHERE o.run_id = r.run_id) "
            "ORDER BY r.started DESC LIMIT 1",
            (plan, run_id, started, duts),
        )
        row = cur.fetchone()
        if row is None:
            return None
        prev_id, host = row
        cur.execute(
            "SELECT entry FROM scenario_outcomes WHERE run_id = %s ORDER BY started",
            (prev_id,),
        )
        entries = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT dut, facts FROM dut_facts WHERE run_id = %s", (prev_id,))
        facts = {dut: f for dut, f in cur.fetchall()}
    return {"run_id": prev_id, "host": host, "entries": entries, "facts": facts}


def all_run_entries(conn: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every run the coordinator recorded with its journal entries in the order written (for
    `harness atlas --lab`), oldest run first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT r.run_id, o.entry FROM runs r JOIN scenario_outcomes o USING (run_id) "
            "ORDER BY r.started, r.run_id, o.started"
        )
        runs: dict[str, list[dict[str, Any]]] = {}
        for run_id, entry in cur.fetchall():
            runs.setdefault(run_id, []).append(entry)
    return list(runs.items())
