"""The coordinator's schema, as numbered migrations applied once each, in order.

`schema_migrations` records each applied version. `migrate()` runs the missing ones in one
transaction under a transaction-level advisory lock, so two controllers initialising the same
database at once apply each migration exactly once. A database newer than this harness (a
version it does not know) is refused rather than used half-understood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError

#: pg_advisory_xact_lock key serialising migrations (any constant distinct from DUT keys).
MIGRATION_LOCK_KEY = 0x6C61625F6D696772  # "lab_migr"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "leases, queue, runs, outcomes, facts",
        """
        CREATE TABLE leases (
            dut text PRIMARY KEY,
            backend_pid integer NOT NULL,
            backend_start timestamptz NOT NULL,
            host text NOT NULL,
            os_user text NOT NULL,
            pid integer NOT NULL,
            run_id text NOT NULL DEFAULT '',
            plan text NOT NULL DEFAULT '',
            purpose text NOT NULL DEFAULT '',
            since timestamptz NOT NULL,
            heartbeat timestamptz NOT NULL
        );
        CREATE TABLE lease_queue (
            ticket bigserial PRIMARY KEY,
            dut text NOT NULL,
            rank integer NOT NULL,
            backend_pid integer NOT NULL,
            backend_start timestamptz NOT NULL,
            host text NOT NULL,
            os_user text NOT NULL,
            pid integer NOT NULL,
            run_id text NOT NULL DEFAULT '',
            plan text NOT NULL DEFAULT '',
            purpose text NOT NULL DEFAULT '',
            enqueued timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX lease_queue_dut ON lease_queue (dut, rank, ticket);
        CREATE TABLE runs (
            run_id text PRIMARY KEY,
            plan text NOT NULL,
            purpose text NOT NULL,
            lab text NOT NULL,
            host text NOT NULL,
            os_user text NOT NULL,
            duts text[] NOT NULL,
            started timestamptz NOT NULL,
            finished timestamptz,
            exit_code integer
        );
        CREATE TABLE scenario_outcomes (
            run_id text NOT NULL REFERENCES runs ON DELETE CASCADE,
            scenario text NOT NULL,
            dut text NOT NULL,
            outcome text NOT NULL,
            started timestamptz NOT NULL,
            duration_s double precision NOT NULL,
            message text NOT NULL DEFAULT '',
            entry jsonb NOT NULL,
            PRIMARY KEY (run_id, scenario, started)
        );
        CREATE INDEX scenario_outcomes_scenario ON scenario_outcomes (scenario, started);
        CREATE TABLE dut_facts (
            run_id text NOT NULL REFERENCES runs ON DELETE CASCADE,
            dut text NOT NULL,
            facts jsonb NOT NULL,
            recorded timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, dut)
        );
        """,
    ),
    Migration(
        2,
        "shared units: one plan run by several controllers",
        """
        CREATE TABLE shared_units (
            effort text NOT NULL,
            unit integer NOT NULL,
            scenarios text[] NOT NULL,
            state text NOT NULL DEFAULT 'todo' CHECK (state IN ('todo', 'claimed', 'done')),
            backend_pid integer,
            backend_start timestamptz,
            host text,
            pid integer,
            dut text,
            run_id text,
            exit_code integer,
            claimed timestamptz,
            finished timestamptz,
            PRIMARY KEY (effort, unit)
        );
        """,
    ),
)


def current_version(conn: Any) -> int:
    """The highest applied migration, 0 for a database never initialised."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return 0
        cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def migrate(conn: Any) -> list[Migration]:
    """Apply the missing migrations in one transaction; the ones applied now."""
    applied: list[Migration] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        row = cur.fetchone()
        have = int(row[0]) if row else 0
        _refuse_newer(have)
        for m in MIGRATIONS:
            if m.version <= have:
                continue
            cur.execute(m.sql)
            cur.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name)
            )
            applied.append(m)
    return applied


def require_current(conn: Any, where: str) -> None:
    """ConfigError unless the schema is exactly this harness's (tells how to fix it)."""
    have = current_version(conn)
    _refuse_newer(have)
    want = MIGRATIONS[-1].version
    if have < want:
        raise ConfigError(
            f"coordinator {where}: schema version {have}, this harness needs {want}: "
            "run `harness lab coordinator init LAB`"
        )


def _refuse_newer(have: int) -> None:
    want = MIGRATIONS[-1].version
    if have > want:
        raise ConfigError(
            f"the coordinator's schema is version {have}, newer than this harness knows "
            f"({want}): upgrade the harness"
        )
