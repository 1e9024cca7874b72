"""sslmode against a real PostgreSQL with TLS on: verify-full with the lab's CA connects
encrypted; a CA that did not sign the server's certificate is refused (the harness says it
cannot connect, with libpq's reason and never the password)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint, connect
from harness.coordinator.scratch_server import ScratchServer, make_certificates
from harness.errors import InfrastructureError
from tests.coordinator.pg import write_lab

ENV = "HARNESS_TEST_TLS_PW"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[ScratchServer, str]]:
    server = ScratchServer.start(tls=True)
    password = "tls-" + secrets.token_hex(12)
    try:
        with psycopg.connect(server.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE tlsuser LOGIN PASSWORD '{password}'")
        yield server, password
    finally:
        server.stop()


def endpoint(folder: Path, server: ScratchServer, sslmode: str, ca: Path | None) -> Endpoint:
    root = f"  sslrootcert: {ca}\n" if ca else ""
    lab = load_lab(
        write_lab(
            folder,
            "coordinator:\n"
            f"  url: postgresql://127.0.0.1:{server.port}/postgres\n"
            "  user: tlsuser\n"
            f"  password: env:{ENV}\n"
            f"  sslmode: {sslmode}\n" + root,
        )
    )
    assert lab.coordinator is not None
    return Endpoint(lab.coordinator, lab.base_dir)


def test_verify_full_with_the_labs_ca_connects_encrypted(
    tls_server: tuple[ScratchServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, password = tls_server
    monkeypatch.setenv(ENV, password)
    conn = connect(endpoint(tmp_path, server, "verify-full", server.ca_file))
    try:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)
    finally:
        conn.close()
    plain = connect(endpoint(tmp_path / "plain", server, "disable", None))
    try:
        row = plain.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (False,)
    finally:
        plain.close()


def test_verify_full_with_another_ca_is_refused(
    tls_server: tuple[ScratchServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, password = tls_server
    monkeypatch.setenv(ENV, password)
    other_ca = tmp_path / "other-ca.pem"
    make_certificates(tmp_path, other_ca)  # a CA that did not sign the server's certificate
    with pytest.raises(InfrastructureError) as refused:
        connect(endpoint(tmp_path / "lab", server, "verify-full", other_ca))
    text = str(refused.value)
    assert "cannot connect" in text and "SSL error" in text and password not in text
