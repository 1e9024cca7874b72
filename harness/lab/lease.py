"""Exclusive DUT leases on one controller: one pytest worker (of one run) drives a DUT at a time.

A lease is an OS file lock (`filelock`, flock on POSIX) on `<lease dir>/<key>.lock`, so a
crashed or killed owner releases it with its process: no stale leases. Beside it,
`<key>.owner.json` says who holds it (pid, run id, worker, since), for the error a second
claimant gets: it is refused at once with the owner's details, never left waiting.

The key is the DUT's name and address, so two lab files naming the same machine share a lease
(a virtual DUT's address is its running lab's control endpoint: each virtual lab is its own).
The directory is private to the user (0700).

>>> lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="r1")       # doctest: +SKIP
>>> lease.release()                                                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from harness.errors import InfrastructureError

ENV_LEASE_DIR = "HARNESS_LEASE_DIR"


def lease_dir() -> Path:
    configured = os.environ.get(ENV_LEASE_DIR)
    base = (
        Path(configured)
        if configured
        else Path(tempfile.gettempdir())
        / (f"dma-lab-harness-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    )
    path = base / "leases"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return path


def _key(dut: str, address: str) -> str:
    digest = hashlib.sha256(f"{dut}\0{address}".encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dut)
    return f"{safe}-{digest}"


@dataclass
class DutLease:
    dut: str
    lock: FileLock
    owner_file: Path

    @classmethod
    def acquire(
        cls, dut: str, address: str, *, run_id: str = "", directory: Path | None = None
    ) -> DutLease:
        where = directory or lease_dir()
        key = _key(dut, address)
        lock = FileLock(str(where / f"{key}.lock"), is_singleton=False)
        owner_file = where / f"{key}.owner.json"
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise InfrastructureError(
                f"DUT {dut} is leased by someone else: {_describe(owner_file)}"
            ) from None
        owner = {
            "dut": dut,
            "address": address,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": run_id,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = owner_file.with_name(f".{owner_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(owner) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(owner_file)
        return cls(dut, lock, owner_file)

    def release(self) -> None:
        if self.lock.is_locked:
            with contextlib.suppress(FileNotFoundError):
                self.owner_file.unlink()
            self.lock.release()


def _describe(owner_file: Path) -> str:
    try:
        o = json.loads(owner_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "owner unknown (no owner record)"
    return (
        f"pid {o.get('pid')} on {o.get('host')}, run {o.get('run_id') or '-'}, "
        f"worker {o.get('worker')}, since {o.get('since')}"
    )
