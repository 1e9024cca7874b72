"""`harness lab status`: a live holder with its run, the queue in serving order, a dead
holder's row shown as free; `--watch` prints again; a lab without a coordinator is exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, DutBusy, LeaseHolder
from harness.coordinator.schema import migrate
from harness.coordinator.status import lab_status, render
from harness.remote.deadline import Deadline
from tests.coordinator.pg import Coordinated

ROOT = Path(__file__).resolve().parents[2]


def test_status_shows_the_holder_and_the_queue(coordinated: Coordinated) -> None:
    lab = load_lab(coordinated.lab)
    assert lab.coordinator is not None
    ep = Endpoint(lab.coordinator, lab.base_dir)
    with coordinated.connect() as conn:
        migrate(conn)
    holder = LeaseHolder(ep, Claim(run_id="night-1", plan="nightly", purpose="nightly"))
    waiter = LeaseHolder(ep, Claim(run_id="qual-1", plan="tb_release", purpose="qualification"))
    holder.acquire("tb-01")
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            waiter.acquire("tb-01", Deadline.after(2, "tb-01"))
        except DutBusy as exc:
            failed.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    try:
        with coordinated.connect() as conn:
            end = time.monotonic() + 10
            while not lab_status(conn, ["tb-01"])[0]["queue"]:
                assert time.monotonic() < end
                time.sleep(0.05)
            (tb,) = lab_status(conn, ["tb-01"])
            assert tb["holder"]["run_id"] == "night-1" and tb["holder"]["purpose"] == "nightly"
            assert [w["run_id"] for w in tb["queue"]] == ["qual-1"]
            json.dumps(tb)  # JSON-ready
            lines = render([tb])
            assert lines[0].startswith("tb-01: held by pid") and "run night-1" in lines[0]
            assert "queue 1:" in lines[1] and "run qual-1" in lines[1]
            assert lines[2] == "  last run: none recorded"
    finally:
        t.join(timeout=10)
        waiter.close()
    assert failed  # the waiter gave up after 2 s
    # The holder's connection ends without releasing (its process died): its row stays. Its
    # heartbeat is stopped first, or it would reopen the connection and lock tb-01 again.
    holder.stop_heartbeat()
    holder.conn.close()
    with coordinated.connect() as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (1,)
        end = time.monotonic() + 10
        while lab_status(conn, ["tb-01"])[0]["holder"] is not None:  # backend gone: free
            assert time.monotonic() < end
            time.sleep(0.05)


def test_status_command_watches_and_needs_a_coordinator(coordinated: Coordinated) -> None:
    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            cwd=ROOT, capture_output=True, text=True, env=coordinated.env(), timeout=60,
        )  # fmt: skip

    before = harness("lab", "status", str(coordinated.lab))
    assert before.returncode == 2 and "harness lab coordinator init" in before.stderr
    assert harness("lab", "coordinator", "init", str(coordinated.lab)).returncode == 0
    again = harness("lab", "coordinator", "init", str(coordinated.lab))
    assert again.returncode == 0 and "applied" not in again.stdout
    watched = harness("lab", "status", str(coordinated.lab), "--watch", "0.2", "--count", "2")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("tb-01: free") == 2 and watched.stdout.count("m2-01: free") == 2
    valid = harness("lab", "validate", str(coordinated.lab))
    assert valid.returncode == 0, valid.stderr
    assert f"Coordinator: {coordinated.url} (user labuser, sslmode disable)" in valid.stdout
    assert coordinated.password not in valid.stdout
    plain = harness("lab", "status", "lab_config/virtual.yaml")
    assert plain.returncode == 2 and "no 'coordinator:' section" in plain.stderr


def test_status_shows_the_last_run_and_its_quarantine(coordinated: Coordinated) -> None:
    with coordinated.connect() as conn:
        migrate(conn)
        for run_id, day in (("old-run", "2026-12-01"), ("new-run", "2026-12-02")):
            conn.execute(
                "INSERT INTO runs (run_id, plan, purpose, lab, host, os_user, duts, started, "
                "finished, exit_code) VALUES (%s, 'nightly', 'nightly', 'lab.yaml', 'ci-2', "
                "'ci', %s, %s, %s, 3)",
                (run_id, ["tb-01"], f"{day}T01:00:00Z", f"{day}T02:00:00Z"),
            )
        rows = [
            ("old-run", "tb-01.a", "passed", "2026-12-01T01:10:00Z", {}),
            ("new-run", "tb-01.a", "broken", "2026-12-02T01:10:00Z", {"quarantined": "bugcheck"}),
            ("new-run", "tb-01.b", "not_run", "2026-12-02T01:20:00Z", {}),
        ]
        for run_id, scenario, outcome, started, extra in rows:
            entry = {"scenario": scenario, "dut": "tb-01", "outcome": outcome, **extra}
            conn.execute(
                "INSERT INTO scenario_outcomes (run_id, scenario, dut, outcome, started, "
                "duration_s, entry) VALUES (%s, %s, 'tb-01', %s, %s, 1.0, %s::jsonb)",
                (run_id, scenario, outcome, started, json.dumps(entry)),
            )
        (tb,) = lab_status(conn, ["tb-01"])
    last = tb["last_run"]
    assert last["run_id"] == "new-run" and last["exit_code"] == 3
    assert last["outcomes"] == {"broken": 1, "not_run": 1}
    assert last["quarantined"] == "bugcheck"
    lines = render([tb])
    assert "broken 1, not_run 1; exit 3" in lines[1]
    assert lines[2] == "  quarantined in that run: bugcheck"
