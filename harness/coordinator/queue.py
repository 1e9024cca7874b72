"""The queue of runs waiting for a DUT: a ticket per (run, DUT), served in the lab's priority
order of plan purpose, first come first served within a priority (ticket order).

A ticket names the server backend (pid and start time) of its waiter's connection, so a waiter
that died - its connection gone - no longer counts: its ticket is skipped and swept. No waiter
can block the queue by dying.
"""

from __future__ import annotations

from typing import Any

#: A row's backend is alive: its (pid, start) is a current server backend.
ALIVE = (
    "EXISTS (SELECT 1 FROM pg_stat_activity a "
    "WHERE a.pid = {t}.backend_pid AND a.backend_start = {t}.backend_start)"
)


def rank_of(purpose: str, priorities: list[str]) -> int:
    """0 for the first purpose of the lab's order; an unknown purpose waits last."""
    return priorities.index(purpose) if purpose in priorities else len(priorities)


def enqueue(conn: Any, dut: str, rank: int, me: dict[str, Any]) -> int:
    """A new ticket for `dut`; its number (tickets only grow: FIFO within a rank)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO lease_queue (dut, rank, backend_pid, backend_start, host, os_user, pid, "
            "run_id, plan, purpose) VALUES (%(dut)s, %(rank)s, %(backend_pid)s, "
            "%(backend_start)s, %(host)s, %(os_user)s, %(pid)s, %(run_id)s, %(plan)s, "
            "%(purpose)s) RETURNING ticket",
            {**me, "dut": dut, "rank": rank},
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def leave(conn: Any, ticket: int) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM lease_queue WHERE ticket = %s", (ticket,))


def head(conn: Any, dut: str) -> int | None:
    """The ticket served next for `dut` among live waiters, or None if nobody waits."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT ticket FROM lease_queue q WHERE dut = %s AND {ALIVE.format(t='q')} "
            "ORDER BY rank, ticket LIMIT 1",
            (dut,),
        )
        row = cur.fetchone()
        return int(row[0]) if row else None


def waiting(conn: Any, dut: str | None = None) -> list[dict[str, Any]]:
    """Live waiters (of one DUT, or all), in the order they will be served."""
    where = "AND q.dut = %s" if dut is not None else ""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ticket, dut, rank, host, os_user, pid, run_id, plan, purpose, enqueued "
            f"FROM lease_queue q WHERE {ALIVE.format(t='q')} {where} ORDER BY dut, rank, ticket",
            (dut,) if dut is not None else (),
        )
        cols = [d.name for d in cur.description or ()]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def sweep(conn: Any) -> int:
    """Delete the tickets of waiters that are gone; how many."""
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM lease_queue q WHERE NOT {ALIVE.format(t='q')}")
        return int(cur.rowcount or 0)
