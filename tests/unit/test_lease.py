"""DUT leases: exclusive across processes, refused at once with the owner, freed by death."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.lab.lease import DutLease, LeaseRefused

HOLD = """
import sys, time
from pathlib import Path
from harness.lab.lease import DutLease, LeaseRefused
lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="other-run", directory=Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.readline()  # hold until told (or killed)
"""


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_leased_dut_is_refused_with_the_owner_and_freed_when_the_owner_dies(
    tmp_path: Path,
) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(InfrastructureError) as err:
            DutLease.acquire("tb-01", "10.0.0.5", run_id="mine", directory=tmp_path)
        assert f"pid {proc.pid}" in str(err.value) and "other-run" in str(err.value)
        other = DutLease.acquire("tb-01", "10.0.0.6", directory=tmp_path)  # another machine
        other.release()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="mine", directory=tmp_path)
    assert "mine" in lease.owner_file.read_text()
    lease.release()
    assert not lease.owner_file.exists()


def test_the_owner_record_has_a_heartbeat_that_advances(tmp_path: Path) -> None:
    import json
    import stat
    import time

    lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="r", directory=tmp_path, heartbeat_s=0.05)
    try:
        first = json.loads(lease.owner_file.read_text())
        assert {"host", "pid", "run_id", "since", "heartbeat"} <= set(first)
        assert stat.S_IMODE(lease.owner_file.stat().st_mode) == 0o600
        old = "1970-01-01T00:00:00+00:00"
        lease.owner["heartbeat"] = old  # the heartbeat thread rewrites it with the time
        lease.owner_file.write_text(json.dumps(lease.owner))
        deadline = time.monotonic() + 5
        while json.loads(lease.owner_file.read_text())["heartbeat"] == old:
            assert time.monotonic() < deadline, "no heartbeat within 5 s"
            time.sleep(0.01)
    finally:
        lease.release()
    assert lease._beat is not None and not lease._beat.is_alive()


def test_a_dead_owners_lease_is_taken_over_and_recorded(tmp_path: Path) -> None:
    import json

    proc = _holder(tmp_path)
    proc.kill()  # SIGKILL: no release, the owner record stays behind
    proc.wait(timeout=10)
    lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="mine", directory=tmp_path)
    try:
        record = json.loads(lease.owner_file.read_text())
        assert record["run_id"] == "mine"
        assert record["took_over_from"]["pid"] == proc.pid
        assert record["took_over_from"]["run_id"] == "other-run"
    finally:
        lease.release()


def test_a_stale_heartbeat_is_reported_as_a_hung_owner(tmp_path: Path) -> None:
    import json

    proc = _holder(tmp_path)
    try:
        owner = next(tmp_path.glob("*.owner.json"))
        record = json.loads(owner.read_text())
        record["heartbeat"] = "2026-01-01T00:00:00+00:00"
        owner.write_text(json.dumps(record))
        with pytest.raises(InfrastructureError) as err:
            DutLease.acquire("tb-01", "10.0.0.5", run_id="mine", directory=tmp_path)
        text = str(err.value)
        assert "last heartbeat" in text and "looks hung" in text and f"pid {proc.pid}" in text
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_lease_held_by_another_worker_of_the_same_run_is_a_harness_bug(tmp_path: Path) -> None:
    from harness.errors import HarnessBug
    from harness.pytest_plugin.fixtures import lease_for_run

    held = DutLease.acquire("tb-01", "10.0.0.5", run_id="run-A", directory=tmp_path)
    try:
        with pytest.raises(HarnessBug, match="two workers of this run"):
            lease_for_run("tb-01", "10.0.0.5", "run-A", directory=tmp_path)
        with pytest.raises(LeaseRefused, match="leased by someone else") as refused:
            lease_for_run("tb-01", "10.0.0.5", "run-B", directory=tmp_path)
        assert refused.value.owner is not None and refused.value.owner["run_id"] == "run-A"
    finally:
        held.release()
    mine = lease_for_run("tb-01", "10.0.0.5", "run-B", directory=tmp_path)
    mine.release()
