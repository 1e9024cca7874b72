"""Lab-wide DUT leases: a session-level advisory lock per DUT on the holder's dedicated
connection, plus a `leases` row anyone can read (host, user, pid, run, plan, purpose, since,
heartbeat).

The lock is the truth; the row is for people. The server frees the lock when the connection
ends, so a holder that dies - kill -9 included - frees its DUTs at once, and one cut off by the
network within the keepalive bound (`connection.py`). No lease outlives its holder. A row whose
backend is gone is a dead holder's; the next holder replaces it and says whom it took over from.

A DUT held elsewhere is refused at once (`DutBusy`, naming the holder) or, given a deadline,
waited for in the queue (`queue.py`). A run's DUTs are taken in name order, so two runs that
want overlapping sets never hold one each while waiting for the other's.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from harness.coordinator import queue
from harness.coordinator.connection import Endpoint, connect, who
from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline

log = logging.getLogger(__name__)

#: How often a waiter looks whether its turn has come (the wait is bounded by its deadline).
POLL_S = 0.2


def lock_key(dut: str) -> int:
    """The advisory lock key of a DUT: 64 bits of SHA-256 of its name (signed, as bigint)."""
    digest = hashlib.sha256(b"dma-lab-harness/dut\0" + dut.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_text(row: dict[str, Any] | None) -> str:
    """A holder or waiter row in words."""
    if row is None:
        return "holder unknown (no lease row yet)"
    text = (
        f"pid {row.get('pid')} on {row.get('host')} (user {row.get('os_user')}), "
        f"run {row.get('run_id') or '-'}, plan {row.get('plan') or '-'} "
        f"({row.get('purpose') or '-'})"
    )
    since = row.get("since")
    if isinstance(since, datetime):
        text += f", since {since.isoformat(timespec='seconds')}"
    beat = row.get("heartbeat")
    if isinstance(beat, datetime):
        age = (datetime.now(timezone.utc) - beat).total_seconds()
        text += f", heartbeat {age:.0f} s ago"
    return text


class DutBusy(InfrastructureError):
    """The DUT is held by another run (`holder` is its row), or the wait for it ran out."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Claim:
    """What a run says about itself in its lease rows and queue tickets."""

    run_id: str = ""
    plan: str = ""
    purpose: str = "manual"


def live_holder(conn: Any, dut: str) -> dict[str, Any] | None:
    """The lease row of `dut` if its holder's connection is alive."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT dut, host, os_user, pid, run_id, plan, purpose, since, heartbeat FROM leases l "
            f"WHERE dut = %s AND {queue.ALIVE.format(t='l')}",
            (dut,),
        )
        cols = [d.name for d in cur.description or ()]
        row = cur.fetchone()
        return dict(zip(cols, row, strict=True)) if row else None


@dataclass
class CoordinatorLease:
    """One DUT held by a `LeaseHolder` (the lease interface of `harness.lab.lease.Lease`)."""

    dut: str
    owner: dict[str, Any]
    holder: LeaseHolder = field(repr=False)

    def release(self) -> None:
        self.holder.release(self.dut)


class LeaseHolder:
    """A run's dedicated connection and the DUT leases it holds; a heartbeat thread keeps the
    rows' `heartbeat` fresh and calls `on_beat` (the run's history sync) each time."""

    def __init__(
        self,
        endpoint: Endpoint,
        claim: Claim,
        *,
        priorities: list[str] | None = None,
        on_beat: Callable[[], None] | None = None,
        echo: Callable[[str], None] = lambda line: None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.claim = claim
        self.priorities = priorities or list(endpoint.cfg.priorities)
        self.on_beat = on_beat
        self.echo = echo
        self.on_lost = on_lost
        self.held: dict[str, CoordinatorLease] = {}
        self.lost: str | None = None
        self.me: dict[str, Any] = {
            **who(),
            "run_id": claim.run_id,
            "plan": claim.plan,
            "purpose": claim.purpose,
        }
        self.conn = self._open()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _open(self) -> Any:
        """A new dedicated connection; `me` takes its server backend (pid, start)."""
        conn = connect(self.endpoint)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            )
            row = cur.fetchone()
        assert row is not None
        self.me["backend_pid"], self.me["backend_start"] = row
        return conn

    # -- acquiring --------------------------------------------------------------------------

    def acquire_all(self, duts: list[str], wait: Deadline | None = None) -> None:
        """Every DUT in name order, each at once or (with `wait`) in the queue until `wait`."""
        for dut in sorted(set(duts)):
            self.acquire(dut, wait)

    def acquire(self, dut: str, wait: Deadline | None = None) -> CoordinatorLease:
        """Hold `dut`: at once, or DutBusy naming its holder; with `wait`, queue until then."""
        if dut in self.held:
            return self.held[dut]
        queue.sweep(self.conn)
        if wait is None:
            if queue.head(self.conn, dut) is None and self._try_lock(dut):
                return self._record(dut)
            raise self._busy(dut, "")
        ticket = queue.enqueue(
            self.conn, dut, queue.rank_of(self.claim.purpose, self.priorities), self.me
        )
        told = False
        try:
            while True:
                if queue.head(self.conn, dut) == ticket and self._try_lock(dut):
                    queue.leave(self.conn, ticket)
                    return self._record(dut)
                if wait.expired:
                    raise self._busy(dut, f" (waited {wait.budget_s:.0f} s)")
                if not told:
                    holder = live_holder(self.conn, dut)
                    self.echo(f"waiting for DUT {dut}: held by {holder_text(holder)}")
                    told = True
                self._stop.wait(min(POLL_S, wait.remaining()))
        finally:
            queue.leave(self.conn, ticket)

    def _try_lock(self, dut: str) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(dut),))
            row = cur.fetchone()
            return bool(row and row[0])

    def _busy(self, dut: str, waited: str) -> DutBusy:
        holder = live_holder(self.conn, dut)
        ahead = queue.waiting(self.conn, dut)
        text = f"DUT {dut} is held by {holder_text(holder)}{waited}"
        if holder is None and ahead:
            text = f"DUT {dut} is promised to a waiting run: {holder_text(ahead[0])}{waited}"
        elif ahead:
            text += f"; {len(ahead)} run(s) waiting"
        if not waited:
            text += "; `harness run --wait DURATION` queues for it"
        return DutBusy(text, holder)

    def _record(self, dut: str) -> CoordinatorLease:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT host, os_user, pid, run_id, plan, purpose, since FROM leases WHERE dut = %s",
                (dut,),
            )
            previous = cur.fetchone()
            cur.execute(
                "INSERT INTO leases (dut, backend_pid, backend_start, host, os_user, pid, run_id, "
                "plan, purpose, since, heartbeat) VALUES (%(dut)s, %(backend_pid)s, "
                "%(backend_start)s, %(host)s, %(os_user)s, %(pid)s, %(run_id)s, %(plan)s, "
                "%(purpose)s, now(), now()) ON CONFLICT (dut) DO UPDATE SET "
                "backend_pid = EXCLUDED.backend_pid, backend_start = EXCLUDED.backend_start, "
                "host = EXCLUDED.host, os_user = EXCLUDED.os_user, pid = EXCLUDED.pid, "
                "run_id = EXCLUDED.run_id, plan = EXCLUDED.plan, purpose = EXCLUDED.purpose, "
                "since = now(), heartbeat = now()",
                {**self.me, "dut": dut},
            )
        owner = {k: v for k, v in self.me.items() if k != "backend_start"}
        mine = previous is not None and (previous[0], previous[2]) == (
            self.me["host"],
            self.me["pid"],
        )
        if previous is not None and not mine:
            # the lock was free, so the row's holder is gone: it died without releasing
            owner["took_over_from"] = f"pid {previous[2]} on {previous[0]}, run {previous[3]}"
            log.warning("DUT %s: took over the lease of a dead holder (%s)", dut, owner)
        lease = CoordinatorLease(dut, owner, self)
        self.held[dut] = lease
        self._start_heartbeat()
        return lease

    # -- holding ----------------------------------------------------------------------------

    def set_run_id(self, run_id: str) -> None:
        """Name the run in the rows once its id is known."""
        self.me["run_id"] = run_id
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE leases SET run_id = %s WHERE backend_pid = %s AND backend_start = %s",
                (run_id, self.me["backend_pid"], self.me["backend_start"]),
            )

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="coordinator-heartbeat")
            self._beat.daemon = True
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.endpoint.cfg.heartbeat_s):
            self.beat()

    def beat(self) -> None:
        """Refresh the rows' heartbeat and run `on_beat`. A lost connection (its locks gone
        with it) is reopened and the DUTs locked again; a DUT someone took meanwhile is lost:
        `on_lost` is called once with the reason (the run stops)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "UPDATE leases SET heartbeat = now() "
                    "WHERE backend_pid = %s AND backend_start = %s",
                    (self.me["backend_pid"], self.me["backend_start"]),
                )
        except Exception:  # the connection is gone: so are the locks
            self._recover()
        if self.on_beat is not None:
            try:
                self.on_beat()
            except Exception as exc:  # history is best effort while the run goes on
                log.warning("coordinator history not written: %s", type(exc).__name__)

    def _recover(self) -> None:
        if self.lost is not None:
            return
        duts = sorted(self.held)
        try:
            self.conn.close()
            self.conn = self._open()
            taken = [d for d in duts if not self._try_lock(d)]
        except Exception as exc:  # the coordinator cannot be reached: the locks are gone
            self._lose(f"connection to the coordinator lost ({type(exc).__name__})")
            return
        for dut in duts:
            if dut not in taken:
                self._record(dut)
        if taken:
            holders = "; ".join(f"{d}: {holder_text(live_holder(self.conn, d))}" for d in taken)
            self._lose(f"lease of {', '.join(taken)} lost and taken by another run ({holders})")
        else:
            log.warning("coordinator connection reopened; %s locked again", ", ".join(duts))

    def _lose(self, reason: str) -> None:
        self.lost = reason
        log.error("coordinator: %s", reason)
        if self.on_lost is not None:
            self.on_lost(reason)

    # -- releasing --------------------------------------------------------------------------

    def release(self, dut: str) -> None:
        if self.held.pop(dut, None) is None or self.conn.closed:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                "DELETE FROM leases WHERE dut = %s AND backend_pid = %s AND backend_start = %s",
                (dut, self.me["backend_pid"], self.me["backend_start"]),
            )
            cur.execute("SELECT pg_advisory_unlock(%s)", (lock_key(dut),))

    def stop_heartbeat(self) -> None:
        """No more heartbeats (nor `on_beat` calls); the leases are still held."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)

    def close(self) -> None:
        """Release everything and end the connection (which would free the locks anyway)."""
        self.stop_heartbeat()
        try:
            for dut in list(self.held):
                self.release(dut)
        except Exception as exc:  # the server frees the locks with the connection
            log.warning("coordinator release: %s", type(exc).__name__)
        finally:
            self.held.clear()
            self.conn.close()
