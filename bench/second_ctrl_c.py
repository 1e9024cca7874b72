"""Benchmark: from a second Ctrl-C to the DUT back at its baseline, through `harness run`.

Runs `harness run` on the default virtual lab with a one-scenario plan that sets DMAGuard 1 (so
the teardown has a driver to uninstall and a reboot to take), sends SIGINT (Ctrl-C) while the
scenario waits for its device, and a second SIGINT at a chosen point; polls the lab's control
endpoint for tb-01 and prints the seconds from the second SIGINT to tb-01 at its baseline (no
driver in the store, DMAGuard absent, unlocked, test signing off, powered on), read from the
lab's truth, not from the harness's report. Points for the second Ctrl-C:

- `soon`: 0.3 s after the first (a user pressing Ctrl-C twice);
- `uninstall`: when the end-of-run teardown starts removing the driver;
- `reboot`: when the teardown asks for its reboot.

    python3 bench/second_ctrl_c.py [--repeat 3] [--points soon,uninstall,reboot]

The virtual lab's time scale (lab_config/virtual.yaml, 0.045) makes a reboot take a few
seconds; on real hardware the figure is dominated by the DUT's reboot time. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.virtual_lab.control import ControlClient  # noqa: E402
from tests.e2e.test_cli_run import SECRET, SECRET_ENV, lab_with, plan_file  # noqa: E402
from tests.e2e.test_signals_teardown import _at_baseline  # noqa: E402

DEADLINE_S = 180.0


def _client(tmpdir: Path) -> ControlClient | None:
    for ep_file in tmpdir.glob("harness-vlab-*/endpoints.json"):
        try:
            control = json.loads(ep_file.read_text())["control"]
        except (OSError, ValueError, KeyError):
            continue
        return ControlClient(control["url"], control["token"], timeout_s=2)
    return None


def one_run(point: str) -> tuple[float, int]:
    """One `harness run`: (seconds from the second SIGINT to tb-01 at baseline, exit code)."""
    with tempfile.TemporaryDirectory(prefix="bench-ctrl-c-") as name:
        tmp = Path(name)
        plan = plan_file(tmp, "second-ctrl-c", dmaguard=["1"])
        tmpdir = tmp / "tmp"
        tmpdir.mkdir()
        env = {**os.environ, SECRET_ENV: SECRET, "TMPDIR": str(tmpdir)}
        argv = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_with(tmp))]
        proc = subprocess.Popen(
            [*argv, "--reports", str(tmp / "reports")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sent: list[float] = []
        back: float | None = None
        client: ControlClient | None = None
        end = time.monotonic() + DEADLINE_S
        try:
            while proc.poll() is None and time.monotonic() < end:
                client = client or _client(tmpdir)
                if client is None:
                    time.sleep(0.05)
                    continue
                try:
                    truth: dict[str, Any] = client.dut("tb-01")
                    ops = [o["operation"] for o in client.operations("tb-01")]
                except Exception:  # the lab stops with the run
                    time.sleep(0.02)
                    continue
                now = time.monotonic()
                if len(sent) == 2 and back is None and _at_baseline(truth):
                    back = now
                _maybe_signal(proc, point, ops, sent, now)
                time.sleep(0.02)
            proc.wait(timeout=max(1.0, end - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if len(sent) < 2 or back is None:
            raise SystemExit(f"{point}: signals sent {len(sent)}, at baseline: {back is not None}")
        return back - sent[1], proc.returncode


def _maybe_signal(
    proc: subprocess.Popen[bytes], point: str, ops: list[str], sent: list[float], now: float
) -> None:
    after_config = ops[ops.index("dmaguard_set") :] if "dmaguard_set" in ops else []
    if not sent:
        if "pnp_devices" in after_config:  # the scenario waits for its device
            proc.send_signal(signal.SIGINT)
            sent.append(now)
        return
    if len(sent) == 2:
        return
    teardown = ops[ops.index("driver_uninstall") :] if "driver_uninstall" in ops else []
    due = {
        "soon": now - sent[0] >= 0.3,
        "uninstall": bool(teardown),
        "reboot": "reboot_request" in teardown,
    }[point]
    if due:
        proc.send_signal(signal.SIGINT)
        sent.append(now)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--points", default="soon,uninstall,reboot")
    args = ap.parse_args()
    print("| second Ctrl-C | runs | to tb-01 at baseline: median (min-max) s | exit codes |")
    print("|---|---|---|---|")
    for point in args.points.split(","):
        times, codes = [], []
        for _ in range(args.repeat):
            seconds, code = one_run(point)
            times.append(seconds)
            codes.append(code)
        print(
            f"| {point} | {len(times)} | {statistics.median(times):.1f} "
            f"({min(times):.1f}-{max(times):.1f}) | {sorted(set(codes))} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
