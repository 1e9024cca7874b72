"""Exclusive DUT leases on one controller: one pytest worker (of one run) drives a DUT at a time.

A lease is an OS file lock (`filelock`, flock on POSIX) on `<lease dir>/<key>.lock`, so a
crashed or killed owner releases it with its process: no lease outlives its owner (labgrid's
never-expiring locks, its issue #1739, are what this avoids). Beside it, `<key>.owner.json`
says who holds it: host, pid, run id, worker, since, and a heartbeat the owner refreshes every
`HEARTBEAT_S` seconds from a background thread.

- A second claimant is refused at once with the owner's details and the age of its last
  heartbeat, never left waiting; a heartbeat older than `STALE_S` says the owner looks hung
  and how to free the DUT (stop that process). A live process is never robbed of its DUT.
- An owner that died without releasing (kill -9, power loss) leaves its owner record behind
  but not the lock: the next claimant takes the lease over and records whom it took it from
  (`took_over_from`), and the harness logs it.

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
import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from harness.errors import InfrastructureError
from harness.private_files import private_dir, write_private

log = logging.getLogger(__name__)

ENV_LEASE_DIR = "HARNESS_LEASE_DIR"
#: Set by `harness run` for its children when the lab has a coordinator (= drive.ENV_LAB).
ENV_COORDINATOR_LAB = "HARNESS_COORDINATOR_LAB"
HEARTBEAT_S = 15.0
STALE_S = 4 * HEARTBEAT_S


def lease_dir() -> Path:
    configured = os.environ.get(ENV_LEASE_DIR)
    base = (
        Path(configured)
        if configured
        else Path(tempfile.gettempdir())
        / (f"dma-lab-harness-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    )
    private_dir(base)
    return private_dir(base / "leases")


class Lease(Protocol):
    """A held DUT lease, whatever holds it: this module's file lock (one controller), or a
    lab's PostgreSQL coordinator (`harness.coordinator.leases.CoordinatorLease`, lab-wide,
    taken by `harness run` for the whole run when the lab file has `coordinator:`)."""

    dut: str
    owner: dict[str, Any]

    def release(self) -> None:
        """Give the DUT back (idempotent)."""


class LeaseRefused(InfrastructureError):
    """The DUT is leased by another live process (the message names it; `owner` is its owner
    record, or None when there is none to read)."""

    def __init__(self, message: str, owner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.owner = owner


def _key(dut: str, address: str) -> str:
    digest = hashlib.sha256(f"{dut}\0{address}".encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dut)
    return f"{safe}-{digest}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


@dataclass
class DutLease:
    dut: str
    lock: FileLock
    owner_file: Path
    owner: dict[str, Any]
    heartbeat_s: float = HEARTBEAT_S
    #: the lab-wide drive lock this process holds too, when the run has a coordinator
    lab_wide: Lease | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _beat: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def acquire(
        cls,
        dut: str,
        address: str,
        *,
        run_id: str = "",
        directory: Path | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> DutLease:
        where = directory or lease_dir()
        key = _key(dut, address)
        owner_file = where / f"{key}.owner.json"
        lock = _lock(where / f"{key}.lock", dut, owner_file)
        now = _stamp(_now())
        owner: dict[str, Any] = {
            "dut": dut,
            "address": address,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": run_id,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "since": now,
            "heartbeat": now,
        }
        previous = _read(owner_file)
        if previous is not None:
            # The lock was free, so its last holder is gone (the OS frees a dead process's
            # lock); its record stayed because it never released.
            owner["took_over_from"] = previous
            log.warning(
                "DUT %s: took over the lease of a dead owner (%s)", dut, _owner_text(previous)
            )
        try:
            write_private(owner_file, json.dumps(owner) + "\n")
        except BaseException:
            lock.release()
            raise
        lease = cls(dut, lock, owner_file, owner, heartbeat_s)
        try:
            lease.lab_wide = _lab_wide(dut)
        except BaseException:
            lease.release()
            raise
        lease._start_heartbeat()
        return lease

    def _start_heartbeat(self) -> None:
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"lease-heartbeat-{self.dut}", daemon=True
        )
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.owner["heartbeat"] = _stamp(_now())
            try:
                write_private(self.owner_file, json.dumps(self.owner) + "\n")
            except OSError as exc:  # a full disk must not kill the run; the lock still holds
                log.warning("DUT %s: lease heartbeat not written: %s", self.dut, exc)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self.lab_wide is not None:
            self.lab_wide.release()
        if self.lock.is_locked:
            with contextlib.suppress(FileNotFoundError):
                self.owner_file.unlink()
            # The lock file goes too (they would pile up in the shared directory), removed
            # while still held: a claimant that opened it just before locks a file no longer
            # at the path, which `_lock` detects, so the lease is never held twice.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock.lock_file)
            self.lock.release()


def _lab_wide(dut: str) -> Lease | None:
    """With a coordinator (`harness run` names its lab in the environment of the processes
    that drive DUTs), the DUT's drive lock (`harness.coordinator.drive`); else None. A previous
    driver still busy past the bound is LeaseRefused."""
    lab_file = os.environ.get(ENV_COORDINATOR_LAB)
    if not lab_file:
        return None
    from harness.coordinator.drive import DEFAULT_WAIT_S, ENV_WAIT_S, hold_to_drive

    try:
        return hold_to_drive(Path(lab_file), dut, float(os.environ.get(ENV_WAIT_S, DEFAULT_WAIT_S)))
    except InfrastructureError as exc:
        raise LeaseRefused(str(exc), None) from None


#: Attempts at locking a lock file that its owner removed meanwhile (see `DutLease.release`).
_LOCK_ATTEMPTS = 5


def _lock(path: Path, dut: str, owner_file: Path) -> FileLock:
    """The lease's lock, taken at once or LeaseRefused. A lock taken on a file that is no
    longer at `path` (its owner released and removed it between our open and our lock) does not
    count: it is released and the path locked again."""
    for _ in range(_LOCK_ATTEMPTS):
        lock = FileLock(str(path), is_singleton=False, mode=0o600)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise LeaseRefused(
                f"DUT {dut} is leased by someone else: {_describe(owner_file)}", _read(owner_file)
            ) from None
        fd = lock._context.lock_file_fd
        try:
            same = fd is not None and os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return lock
        lock.release()
    raise LeaseRefused(f"DUT {dut}: its lease file {path} keeps being replaced", None)


def _read(owner_file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(owner_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _owner_text(o: dict[str, Any]) -> str:
    return (
        f"pid {o.get('pid')} on {o.get('host')}, run {o.get('run_id') or '-'}, "
        f"worker {o.get('worker')}, since {o.get('since')}"
    )


def _describe(owner_file: Path) -> str:
    o = _read(owner_file)
    if o is None:
        return "owner unknown (no owner record)"
    text = _owner_text(o)
    try:
        age = (_now() - datetime.fromisoformat(str(o.get("heartbeat")))).total_seconds()
    except (TypeError, ValueError):
        return text
    text += f", last heartbeat {age:.0f} s ago"
    if age > STALE_S:
        text += (
            f"; it looks hung: if pid {o.get('pid')} on {o.get('host')} is stuck, stop it "
            "(kill) and the lease is free"
        )
    return text
