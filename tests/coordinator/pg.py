"""Helpers of the coordinator tests: a test's database and a lab file that uses it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.coordinator.scratch_server import ScratchServer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "HARNESS_TEST_COORDINATOR_PW"
ROLE = "labuser"


@dataclass(frozen=True)
class Coordinated:
    """A test's coordinator database and a lab file that uses it."""

    server: ScratchServer
    dbname: str
    password: str
    lab: Path

    @property
    def url(self) -> str:
        return f"postgresql://127.0.0.1:{self.server.port}/{self.dbname}"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url, user=ROLE, password=self.password, autocommit=True, sslmode="disable"
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, PASSWORD_ENV: self.password}


def write_lab(folder: Path, coordinator: str, shipped_lab: str = "virtual.yaml") -> Path:
    """A shipped virtual lab with a `coordinator:` section (packages linked beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shipped = ROOT / "lab_config"
    if not (folder / "packages").exists():
        (folder / "packages").symlink_to(shipped / "packages")
    text = (shipped / shipped_lab).read_text(encoding="utf-8")
    lab = folder / "lab.yaml"
    lab.write_text(text.rstrip("\n") + "\n" + coordinator, encoding="utf-8")
    return lab
