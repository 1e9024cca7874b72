"""Lab-wide leases on a real PostgreSQL: refused at once naming the holder, freed by the
holder's death (kill -9), waited for in priority order and first come first served."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, DutBusy, LeaseHolder, lock_key
from harness.coordinator.schema import MIGRATIONS, current_version, migrate
from harness.lab.lease import Lease
from harness.remote.deadline import Deadline
from tests.coordinator.pg import Coordinated, write_lab


def endpoint(c: Coordinated) -> Endpoint:
    lab = load_lab(c.lab)
    assert lab.coordinator is not None
    return Endpoint(lab.coordinator, lab.base_dir)


def ready(c: Coordinated) -> Endpoint:
    ep = endpoint(c)
    with c.connect() as conn:
        migrate(conn)
    return ep


def test_migrations_apply_once_and_record_their_version(coordinated: Coordinated) -> None:
    with coordinated.connect() as conn:
        assert current_version(conn) == 0
        assert [m.version for m in migrate(conn)] == [m.version for m in MIGRATIONS]
        assert migrate(conn) == []
        assert current_version(conn) == MIGRATIONS[-1].version


def test_a_held_dut_is_refused_at_once_naming_its_holder(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    a = LeaseHolder(ep, Claim(run_id="run-a", plan="nightly", purpose="nightly"))
    b = LeaseHolder(ep, Claim(run_id="run-b", plan="smoke", purpose="manual"))
    try:
        lease: Lease = a.acquire("tb-01")
        assert lease.dut == "tb-01"
        t0 = time.monotonic()
        with pytest.raises(DutBusy) as refused:
            b.acquire("tb-01")
        assert time.monotonic() - t0 < 2
        text = str(refused.value)
        assert "run run-a" in text and "plan nightly (nightly)" in text and "--wait" in text
        assert refused.value.holder is not None and refused.value.holder["run_id"] == "run-a"
        b.acquire("m2-01")  # another DUT is free
        lease.release()
        assert b.acquire("tb-01").dut == "tb-01"
    finally:
        a.close()
        b.close()
    with coordinated.connect() as conn:  # released: no rows, no locks
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ).fetchone() == (0,)


HOLD = """
import sys
from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, LeaseHolder
lab = load_lab(sys.argv[1])
h = LeaseHolder(Endpoint(lab.coordinator, lab.base_dir), Claim(run_id="doomed", purpose="nightly"))
h.acquire("tb-01")
print("held", flush=True)
sys.stdin.readline()
"""


def test_kill_9_of_the_holder_frees_the_dut(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(coordinated.lab)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=coordinated.env(),
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "held"
        me = LeaseHolder(ep, Claim(run_id="next", purpose="manual"))
        with pytest.raises(DutBusy, match="run doomed"):
            me.acquire("tb-01")
        proc.kill()
        proc.wait(timeout=10)
        t0 = time.monotonic()
        lease = me.acquire("tb-01", Deadline.after(10, "tb-01"))
        assert time.monotonic() - t0 < 5
        assert "doomed" in lease.owner["took_over_from"]
        me.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_waiters_are_served_by_priority_then_first_come(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    holder = LeaseHolder(ep, Claim(run_id="first", purpose="manual"))
    holder.acquire("tb-01")
    order: list[str] = []
    waiters: list[LeaseHolder] = []
    threads: list[threading.Thread] = []

    def wait_for(h: LeaseHolder) -> None:
        h.acquire("tb-01", Deadline.after(30, "tb-01"))
        order.append(h.claim.run_id)
        h.close()  # the next one's turn

    with coordinated.connect() as conn:
        for run_id, purpose in (
            ("nightly-1", "nightly"),
            ("manual-1", "manual"),
            ("nightly-2", "nightly"),
            ("qual-1", "qualification"),
        ):
            h = LeaseHolder(ep, Claim(run_id=run_id, purpose=purpose))
            waiters.append(h)
            t = threading.Thread(target=wait_for, args=(h,))
            t.start()
            threads.append(t)
            deadline = Deadline.after(10, f"{run_id} queued")
            while conn.execute(  # each is queued before the next one asks
                "SELECT count(*) FROM lease_queue WHERE run_id = %s", (run_id,)
            ).fetchone() != (1,):
                deadline.check()
                time.sleep(0.05)
    holder.close()
    for t in threads:
        t.join(timeout=30)
    assert order == ["qual-1", "manual-1", "nightly-1", "nightly-2"]


def test_a_wait_that_runs_out_is_refused_and_leaves_the_queue(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    a = LeaseHolder(ep, Claim(run_id="a"))
    b = LeaseHolder(ep, Claim(run_id="b"))
    try:
        a.acquire("tb-01")
        with pytest.raises(DutBusy, match=r"waited 1 s"):
            b.acquire("tb-01", Deadline.after(1, "tb-01"))
        with coordinated.connect() as conn:
            assert conn.execute("SELECT count(*) FROM lease_queue").fetchone() == (0,)
    finally:
        a.close()
        b.close()


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("tb-01") == lock_key("tb-01")
    assert lock_key("tb-01") != lock_key("m2-01")
    assert -(2**63) <= lock_key("tb-01") < 2**63


def test_keepalives_are_set_on_the_server_side(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    h = LeaseHolder(ep, Claim())
    try:
        got = dict(
            h.conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count')"
            ).fetchall()
        )
        assert got == {
            "tcp_keepalives_idle": "2",
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": "2",
        }
    finally:
        h.close()


def test_the_lab_file_rejects_a_password_in_the_url(tmp_path: Path) -> None:
    from harness.errors import ConfigError

    lab = write_lab(
        tmp_path, "coordinator:\n  url: postgresql://u:hunter2@db.example/lab\n  user: u\n"
    )
    with pytest.raises(ConfigError) as err:
        load_lab(lab)
    text = str(err.value)
    assert "coordinator.url" in text and "password" in text and "hunter2" not in text
    assert f"{lab}:" in text
    lines = lab.read_text().splitlines()
    assert f":{lines.index('  url: postgresql://u:hunter2@db.example/lab') + 1}" in text


def test_a_driver_waits_for_the_previous_driver_then_is_refused(
    coordinated: Coordinated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a coordinator, the process that drives a DUT (the pytest child, through
    DutLease.acquire) holds its drive lock: a previous driver still busy (a killed
    controller's child tearing down) is waited for, and refused past the bound."""
    from harness.coordinator.drive import ENV_LAB, ENV_WAIT_S, drive_key
    from harness.lab.lease import ENV_COORDINATOR_LAB, DutLease, LeaseRefused

    assert ENV_LAB == ENV_COORDINATOR_LAB  # what harness run sets is what the seam reads

    ready(coordinated)
    monkeypatch.setenv(ENV_LAB, str(coordinated.lab))
    monkeypatch.setenv(ENV_WAIT_S, "0.6")
    with coordinated.connect() as other:
        other.execute("SELECT pg_advisory_lock(%s)", (drive_key("tb-01"),))
        t0 = time.monotonic()
        with pytest.raises(LeaseRefused, match="still driven by another process"):
            DutLease.acquire("tb-01", "10.0.0.5", run_id="r", directory=tmp_path / "l1")
        assert 0.5 < time.monotonic() - t0 < 5
        assert not list((tmp_path / "l1").glob("*"))  # the file lease was given back
        other.execute("SELECT pg_advisory_unlock(%s)", (drive_key("tb-01"),))
        lease = DutLease.acquire("tb-01", "10.0.0.5", run_id="r", directory=tmp_path / "l1")
        assert lease.lab_wide is not None
        got = other.execute("SELECT pg_try_advisory_lock(%s)", (drive_key("tb-01"),)).fetchone()
        assert got == (False,)  # held by the lease's connection
        lease.release()
        got = other.execute("SELECT pg_try_advisory_lock(%s)", (drive_key("tb-01"),)).fetchone()
        assert got == (True,)


def test_a_dropped_connection_is_reopened_and_the_lease_locked_again(
    coordinated: Coordinated,
) -> None:
    ep = ready(coordinated)
    lost: list[str] = []
    h = LeaseHolder(ep, Claim(run_id="steady"), on_lost=lost.append)
    try:
        h.acquire("tb-01")
        old = h.me["backend_pid"]
        with coordinated.connect() as admin:  # the server ends the holder's session
            assert admin.execute("SELECT pg_terminate_backend(%s)", (old,)).fetchone() == (True,)
            h.beat()
            assert lost == [] and h.me["backend_pid"] != old
            row = admin.execute("SELECT backend_pid, run_id FROM leases WHERE dut = 'tb-01'")
            assert row.fetchone() == (h.me["backend_pid"], "steady")
            got = admin.execute("SELECT pg_try_advisory_lock(%s)", (lock_key("tb-01"),))
            assert got.fetchone() == (False,)  # locked again
    finally:
        h.close()


def test_a_lease_taken_while_disconnected_is_reported_lost(coordinated: Coordinated) -> None:
    ep = ready(coordinated)
    lost: list[str] = []
    h = LeaseHolder(ep, Claim(run_id="unlucky"), on_lost=lost.append)
    thief = LeaseHolder(ep, Claim(run_id="thief"))
    try:
        h.acquire("tb-01")
        with coordinated.connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (h.me["backend_pid"],))
        end = time.monotonic() + 10
        while True:  # the server frees the lock as the session ends
            try:
                thief.acquire("tb-01")
                break
            except DutBusy:
                assert time.monotonic() < end
                time.sleep(0.05)
        h.beat()
        assert len(lost) == 1 and "lease of tb-01 lost" in lost[0] and "run thief" in lost[0]
        h.beat()
        assert len(lost) == 1  # said once
    finally:
        h.close()
        thief.close()
