"""One plan, two controllers (`harness run --together NAME`) on the virtual pool of four
interchangeable DUTs (three boot states of the nightly): the plan's boot-state groups are taken from the coordinator's shared
queue (FOR UPDATE SKIP LOCKED); every scenario runs exactly once, each controller runs some,
on a DUT of its own, and their units run at the same time. Also: a unit whose controller died
goes back to the queue; a controller bringing other scenarios under the same name is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.config.lab import load_lab
from harness.coordinator import together
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, LeaseHolder
from harness.coordinator.schema import migrate
from harness.errors import ConfigError
from tests.coordinator.pg import Coordinated

ROOT = Path(__file__).resolve().parents[2]
PATTERN = "tb-pool.*.inf0.external.dv-off.kdp-on.guard[x01].unlocked"  # 3 boot states


def controller(c: Coordinated, reports: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "harness", "run", "testplans/nightly.yaml",
            "--lab", str(c.lab), "--scenario", PATTERN, "--reports", str(reports),
            "--together", "nightly-shared", "--no-report",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=c.env(),
    )  # fmt: skip


def _runs(reports: Path) -> list[dict[str, Any]]:
    found = []
    for run_json in sorted(reports.glob("*/run.json")):
        if run_json.parent.is_symlink():
            continue
        info = json.loads(run_json.read_text())
        journal = run_json.parent / "journal.jsonl"
        entries = [json.loads(x) for x in journal.read_text().splitlines()]
        found.append({"info": info, "journal": entries})
    return found


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("coordinated", ["virtual_pool.yaml"], indirect=True)
def test_two_controllers_share_one_plan(coordinated: Coordinated, tmp_path: Path) -> None:
    init = subprocess.run(
        [sys.executable, "-m", "harness", "lab", "coordinator", "init", str(coordinated.lab)],
        cwd=ROOT, capture_output=True, text=True, env=coordinated.env(), timeout=60,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    t0 = time.monotonic()
    procs = {name: controller(coordinated, tmp_path / name) for name in ("ctl-a", "ctl-b")}
    out = {name: p.communicate(timeout=300)[0] for name, p in procs.items()}
    wall = time.monotonic() - t0
    for name, p in procs.items():
        assert p.returncode == 0, out[name]
    runs = {name: _runs(tmp_path / name) for name in procs}
    ran = [e["scenario"] for rs in runs.values() for r in rs for e in r["journal"]]
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 3  # each exactly once
    assert all(e["outcome"] == "passed" for rs in runs.values() for r in rs for e in r["journal"])
    assert all(runs[name] for name in procs), out  # both took units
    duts = {name: {r["journal"][0]["dut"] for r in rs} for name, rs in runs.items()}
    assert len(duts["ctl-a"]) == len(duts["ctl-b"]) == 1 and duts["ctl-a"] != duts["ctl-b"]
    spans = {
        name: [(_t(a["started"]), _t(a["ended"])) for r in rs for a in r["info"]["attempts"]]
        for name, rs in runs.items()
    }
    busy = sum(e - s for ss in spans.values() for s, e in ss)
    overlap = any(sa < eb and sb < ea for sa, ea in spans["ctl-a"] for sb, eb in spans["ctl-b"])
    assert overlap  # the two controllers' units ran at the same time
    print(f"two controllers: {wall:.1f} s wall for {busy:.1f} s of unit runs")
    with coordinated.connect() as conn:
        assert together.progress(conn, "nightly-shared") == {"done": 3}


def test_a_dead_controllers_unit_goes_back_and_other_work_is_refused(
    coordinated: Coordinated,
) -> None:
    lab = load_lab(coordinated.lab)
    assert lab.coordinator is not None
    ep = Endpoint(lab.coordinator, lab.base_dir)
    with coordinated.connect() as conn:
        migrate(conn)
    units = [["s1", "s2"], ["s3"]]
    dying = LeaseHolder(ep, Claim(run_id="dying"))
    other = LeaseHolder(ep, Claim(run_id="other"))
    try:
        assert together.publish(dying.conn, "e", units) is True
        assert together.publish(other.conn, "e", units) is False  # the same units: joined
        with pytest.raises(ConfigError, match="other scenarios"):
            together.publish(other.conn, "e", [["s1"], ["s2", "s3"]])
        first = together.claim(dying.conn, "e", dying.me, "tb-01")
        assert first == together.Unit(1, ["s1", "s2"])
        second = together.claim(other.conn, "e", other.me, "tb-02")
        assert second == together.Unit(2, ["s3"])  # unit 1 is taken: skipped
        together.finish(other.conn, "e", 2, "run-2", 0)
        assert together.claim(other.conn, "e", other.me, "tb-02") is None
        dying.conn.close()  # the controller of unit 1 dies
        end = time.monotonic() + 10
        while (again := together.claim(other.conn, "e", other.me, "tb-02")) is None:
            assert time.monotonic() < end  # until the server has ended its session
            time.sleep(0.05)
        assert again == together.Unit(1, ["s1", "s2"])
        together.finish(other.conn, "e", 1, "run-1", 1)
        assert together.progress(other.conn, "e") == {"done": 2}
    finally:
        other.close()
        dying.close()
