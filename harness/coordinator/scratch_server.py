"""A throwaway PostgreSQL server in a directory, for the coordinator's tests and benchmark.

It finds `initdb`, `pg_ctl` and `postgres` on PATH or in Debian's /usr/lib/postgresql/*/bin
(the `postgresql` package does not put them on PATH; tools/system-deps.sh installs it),
initialises a cluster (superuser `postgres`, trusted on the Unix socket only; TCP on 127.0.0.1
needs a SCRAM password), starts it listening on a Unix socket in the directory and on a free
127.0.0.1 port, and stops it. PostgreSQL refuses to run as root: as root, the cluster belongs
to `nobody` and the server runs as `nobody` (runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


def find_bin(name: str) -> str:
    """`name` on PATH, else the newest Debian /usr/lib/postgresql/N/bin/name."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(
            f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin: install PostgreSQL "
            "(Debian: apt-get install postgresql; or sh tools/system-deps.sh)"
        )
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScratchServer:
    """A running throwaway cluster: `socket_dir` and `port` to reach it."""

    root: Path
    port: int
    as_user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def superuser_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def _run(self, argv: list[str], timeout: float = START_TIMEOUT_S) -> None:
        if self.as_user:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    @classmethod
    def start(cls, parent: Path | None = None) -> ScratchServer:
        root = Path(tempfile.mkdtemp(prefix="harness-pg-", dir=parent))
        root.chmod(0o755)
        as_user = "nobody" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        server = cls(root, _free_port(), as_user)
        server.socket_dir.mkdir()
        if as_user:
            shutil.chown(server.socket_dir, as_user)
            shutil.chown(root, as_user)
        server._run(
            [
                find_bin("initdb"),
                "-D",
                str(server.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        server._run(
            [
                find_bin("pg_ctl"),
                "-D",
                str(server.data),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-l",
                str(root / "server.log"),
                "-o",
                f"-k {server.socket_dir} -h 127.0.0.1 -p {server.port} -F "
                "-c max_connections=60 -c shared_buffers=16MB",
                "start",
            ]
        )
        return server

    def stop(self) -> None:
        try:
            self._run([find_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
