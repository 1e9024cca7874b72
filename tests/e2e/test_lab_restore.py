"""`harness lab restore LAB`: the DUTs a SIGKILLed run left off their baseline, put back.

A virtual lab runs on its own (as `harness lab up` would); pytest runs a plan against it (DMAGuard
1, locked) and its whole process group is SIGKILLed (what the OOM killer does) while tb-01 is
locked with the test driver installed and DMAGuard 1 in effect. `harness lab restore` then
reports that drift and puts tb-01 back; its state is read from the lab's control endpoint, not
from the harness's output. A DUT that a run holds (its lease) is left alone: exit 3.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.cli.run_support import scenario_tests
from harness.lab.lease import DutLease
from harness.virtual_lab.control import ControlClient
from harness.virtual_lab.launcher import start_virtual_lab
from tests.e2e.test_cli_run import ROOT, SECRET, lab_with, plan_file
from tests.e2e.test_signals_teardown import _at_baseline

DEADLINE_S = 120


def _kill_mid_scenario(lab: Path, plan: Path, endpoints: Path, control: ControlClient) -> None:
    """pytest on the running lab, SIGKILLed once tb-01 is locked and its device plugged."""
    argv = [sys.executable, "-m", "pytest", *map(str, scenario_tests(plan))]
    argv += ["-p", "no:cacheprovider", "-q", "--dma-lab", str(lab), "--dma-plan", str(plan)]
    argv += ["--dma-lab-endpoints", str(endpoints)]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + DEADLINE_S
        while True:
            ops = [o["operation"] for o in control.operations("tb-01")]
            if "session_lock" in ops and "pnp_devices" in ops[ops.index("session_lock") :]:
                break  # locked, the device plugged: waiting for it to show
            assert proc.poll() is None, "pytest ended before the plug"
            assert time.monotonic() < end, "tb-01 was never locked and plugged"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _restore(lab: Path, endpoints: Path, *more: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness", "lab", "restore", str(lab)]
    argv += ["--endpoints", str(endpoints), "--reboot-s", "60", "--step-s", "30", *more]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S)


def test_lab_restore_puts_back_what_a_sigkilled_run_left(tmp_path: Path) -> None:
    lab = lab_with(tmp_path)
    plan = plan_file(tmp_path, "killed", dmaguard=["1"], session=["locked"])
    with start_virtual_lab(lab, password=SECRET) as running:
        endpoints = running.tempdir / "endpoints.json"
        control = ControlClient(running.endpoints.control.url, running.endpoints.control.token)
        _kill_mid_scenario(lab, plan, endpoints, control)
        left = control.dut("tb-01")
        assert left["driver_store"] and left["session"] == "locked", left
        assert left["dmaguard"]["pending"] == 1, left  # off its baseline, by the lab's truth

        r = _restore(lab, endpoints)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "Traceback" not in out and SECRET not in out, out
        found = [line.strip() for line in r.stdout.splitlines() if "found:" in line]
        assert any("driver package nvme-inf0 installed as oem" in f for f in found), out
        assert any(f.startswith("found: dmaguard: ") for f in found), out
        assert "found: session locked, baseline unlocked" in found, out
        assert "tb-01: restored" in r.stdout, out
        assert "m2-01: at baseline (nothing to restore)" in r.stdout, out
        back = control.dut("tb-01")
        assert _at_baseline(back), back

        again = _restore(lab, endpoints, "--dut", "tb-01")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "tb-01: at baseline (nothing to restore)" in again.stdout, again.stdout

        # a DUT a run holds now is left alone: not restored, exit 3
        held = DutLease.acquire("tb-01", running.endpoints.duts["tb-01"].control_url)
        try:
            busy = _restore(lab, endpoints)
        finally:
            held.release()
        assert busy.returncode == 3, busy.stdout + busy.stderr
        assert "tb-01: not checked" in busy.stdout and "busy, left alone" in busy.stdout
        assert "not restored: tb-01" in busy.stdout, busy.stdout
