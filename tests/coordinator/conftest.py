"""A real PostgreSQL server for the coordinator's tests (harness.coordinator.scratch_server):
one per session on a Unix socket and a free 127.0.0.1 port, a fresh database per test, owned
by a role that logs in over TCP with a SCRAM password (so the password path is the real one).
The password is a random value given to the lab file as `env:HARNESS_TEST_COORDINATOR_PW`."""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.coordinator.scratch_server import ScratchServer
from tests.coordinator.pg import PASSWORD_ENV, ROLE, Coordinated, write_lab


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[ScratchServer, str]]:
    server = ScratchServer.start()
    password = "pw-" + secrets.token_hex(12)
    try:
        with psycopg.connect(server.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}'")
        yield server, password
    finally:
        server.stop()


@pytest.fixture
def coordinated(
    pg_server: tuple[ScratchServer, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Coordinated]:
    """A fresh database and a lab file using it: the shipped virtual.yaml, or the shipped lab
    named by indirect parametrization."""
    server, password = pg_server
    dbname = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname} OWNER {ROLE}")
    monkeypatch.setenv(PASSWORD_ENV, password)
    lab = write_lab(
        tmp_path / "lab",
        "coordinator:\n"
        f"  url: postgresql://127.0.0.1:{server.port}/{dbname}\n"
        f"  user: {ROLE}\n"
        f"  password: env:{PASSWORD_ENV}\n"
        "  sslmode: disable\n"
        "  heartbeat_s: 0.5\n"
        "  keepalives_idle_s: 2\n"
        "  keepalives_interval_s: 1\n"
        "  keepalives_count: 2\n",
        getattr(request, "param", "virtual.yaml"),
    )
    try:
        yield Coordinated(server, dbname, password, lab)
    finally:
        with psycopg.connect(server.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        shutil.rmtree(tmp_path / "lab", ignore_errors=True)
