"""The controller's grace after Ctrl-C covers the teardown of every DUT, one after the other.

After the first Ctrl-C (or SIGTERM), `harness run` forwards one SIGINT to pytest and waits a
grace before SIGTERM. pytest puts its DUTs back one after the other (`DutPool.close`), each
bounded by `reboot_s + 4 * step_s`; a fixed 300 s grace was shorter than one DUT's teardown
with the default timeouts (600 + 4 * 300 s), let alone two. The grace is now computed from the
plan's timeouts and the number of DUTs (run_support.interrupt_grace_s); these tests read it
where it acts: pytest's `--lifeline-grace` and run.json (which `--resume` waits on), and the
controller's own wait before SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.cli.run_support import interrupt_grace_s, stop
from harness.config.plan import load_plan
from tests.e2e.test_cli_run import ROOT, SECRET, SECRET_ENV

SMOKE = ROOT / "testplans" / "smoke.yaml"  # tb-01 and m2-01; reboot_s 600, step_s 300


def test_two_dut_grace_covers_both_teardowns_in_pytest_and_run_json(tmp_path: Path) -> None:
    t = load_plan(SMOKE).timeouts
    per_dut = t.reboot_s + 4 * t.step_s  # DutPool.close's deadline for one DUT
    expected = interrupt_grace_s(t, 2)
    assert expected >= 2 * per_dut + 2 * t.step_s  # both DUTs after the scenario's own teardown
    reports = tmp_path / "reports"
    env = {**os.environ, SECRET_ENV: SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(SMOKE), "--reports", str(reports)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        end = time.monotonic() + 120
        cmdline: list[str] = []
        attempt: dict[str, object] = {}
        while not cmdline:
            assert time.monotonic() < end and proc.poll() is None, "pytest never started"
            time.sleep(0.1)
            for run_json in reports.glob("*/run.json"):
                try:
                    attempt = json.loads(run_json.read_text())["attempts"][-1]
                except (ValueError, KeyError, IndexError):
                    continue
                pid = attempt.get("pytest_pid")
                if isinstance(pid, int):
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        proc.send_signal(signal.SIGINT)  # the run ends early; its teardown runs
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert float(cmdline[cmdline.index("--lifeline-grace") + 1]) == expected, cmdline
    assert attempt["grace_s"] == expected, attempt
    assert "Traceback" not in out, out


def test_the_controller_waits_the_whole_grace_before_sigterm(tmp_path: Path) -> None:
    """stop() with a grace longer than the child's teardown: the child finishes it, untouched
    by SIGTERM, however long past the old fixed grace's share it runs (here 1.5 s of 4 s)."""
    seen = tmp_path / "signals.txt"
    child = (
        "import signal, sys, time\n"
        f"log = open({str(seen)!r}, 'a')\n"
        "def note(n, f):\n"
        "    log.write(signal.Signals(n).name + '\\n'); log.flush()\n"
        "signal.signal(signal.SIGINT, note)\n"
        "signal.signal(signal.SIGTERM, note)\n"
        "print('ready', flush=True)\n"
        "end = time.monotonic() + 60\n"
        "while 'SIGINT' not in open(log.name).read() and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n"
        "time.sleep(1.5)  # the teardown\n"
        "sys.exit(7)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], start_new_session=True, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    t0 = time.monotonic()
    assert stop(proc, 4.0) == 7
    assert 1.4 < time.monotonic() - t0 < 4.0
    assert seen.read_text().split() == ["SIGINT"]  # no SIGTERM before the grace ran out
