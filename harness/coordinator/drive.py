"""The process that drives a DUT holds it too, not only its controller.

`harness run` holds the run's DUTs lab-wide in the controller (`run_leases.py`). Its pytest
child, the process that actually talks to the DUT, outlives a controller killed with SIGKILL
for as long as its teardown takes (it restores the DUT's baseline: unplug, unlock, uninstall,
maybe a reboot). So that a run that takes the DUT over meanwhile does not drive it at the same
time, the driving process takes a second advisory lock per DUT (the *drive* lock) on its own
connection, waiting up to the teardown bound for the previous driver to finish.

The controller tells its child which lab (and so which coordinator) through `ENV_LAB`, and the
bound through `ENV_WAIT_S`; the child reads the lab file and resolves the password itself.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint, connect
from harness.coordinator.leases import POLL_S, DutBusy
from harness.remote.deadline import Deadline

ENV_LAB = "HARNESS_COORDINATOR_LAB"
ENV_WAIT_S = "HARNESS_COORDINATOR_DRIVE_WAIT_S"
DEFAULT_WAIT_S = 900.0


def drive_key(dut: str) -> int:
    """The drive lock's key: 64 bits of SHA-256, in a namespace apart from the lease keys."""
    digest = hashlib.sha256(b"dma-lab-harness/drive\0" + dut.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class DriveLock:
    """One DUT's drive lock held by this process (satisfies `harness.lab.lease.Lease`)."""

    dut: str
    conn: Any = field(repr=False)
    owner: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        with self._lock:
            if self.conn.closed:
                return
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (drive_key(self.dut),))
            finally:
                self.conn.close()  # frees the lock in any case


def hold_to_drive(lab_file: Path, dut: str, wait_s: float) -> DriveLock | None:
    """The drive lock of `dut` on the coordinator of `lab_file`, waiting up to `wait_s` for
    a previous driver (DutBusy after that); None if that lab has no coordinator."""
    lab = load_lab(lab_file, check_files=False)
    if lab.coordinator is None:
        return None
    conn = connect(Endpoint(lab.coordinator, lab.base_dir))
    deadline = Deadline.after(wait_s, f"DUT {dut}'s previous driver to finish its teardown")
    idle = threading.Event()
    try:
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (drive_key(dut),)).fetchone()
            if row and row[0]:
                return DriveLock(dut, conn, {"dut": dut, "drive_lock": True})
            if deadline.expired:
                raise DutBusy(
                    f"DUT {dut} is still driven by another process (the teardown of a run "
                    f"whose controller died?) after {wait_s:.0f} s"
                )
            idle.wait(min(POLL_S, deadline.remaining()))
    except BaseException:
        conn.close()
        raise
