"""DUT leases: exclusive across processes, refused at once with the owner, freed by death."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.lab.lease import DutLease

HOLD = """
import sys, time
from pathlib import Path
from harness.lab.lease import DutLease
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
