"""Signals that reach `harness run` after its scenarios: during the report render.

The Allure renderer runs in its own session (a Ctrl-C at the terminal does not reach it), so the
controller must stop it itself when it is told to stop, and remove the renderer's temporary
directory. The renderer here is a stand-in that records its pid and working directory (the
temporary directory) and then blocks, as a slow render of a large nightly does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_run import ROOT, SECRET, SECRET_ENV, lab_with, plan_file

DEADLINE_S = 180


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text(encoding="utf-8").split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait_for(path: Path, proc: subprocess.Popen[str], deadline_s: float) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if path.is_file() and path.read_text(encoding="utf-8").endswith("\n"):
            return path.read_text(encoding="utf-8")
        assert proc.poll() is None, "harness run ended before the render started"
        time.sleep(0.1)
    raise AssertionError(f"{path} not written within {deadline_s} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_render_stops_the_renderer_and_removes_its_temp_dir(
    tmp_path: Path, signum: signal.Signals
) -> None:
    seen = tmp_path / "renderer.txt"
    fake = tmp_path / "allure"
    fake.write_text(f'#!/bin/sh\necho "$$ $(pwd)" > {seen}\nexec sleep 300\n', encoding="utf-8")
    fake.chmod(0o755)
    plan = plan_file(tmp_path, "render-signal")
    reports = tmp_path / "reports"
    env = {**os.environ, "HARNESS_ALLURE": str(fake), SECRET_ENV: SECRET}
    argv = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_with(tmp_path))]
    proc = subprocess.Popen(
        [*argv, "--reports", str(reports)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pid_s, tmp_dir = _wait_for(seen, proc, DEADLINE_S).split()
        renderer = int(pid_s)
        assert _alive(renderer) and Path(tmp_dir).is_dir()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    end = time.monotonic() + 10
    while _alive(renderer) and time.monotonic() < end:
        time.sleep(0.05)
    alive = _alive(renderer)
    if alive:
        os.kill(renderer, signal.SIGKILL)
    assert not alive, f"the renderer {renderer} still runs after the run ended:\n{out}"
    assert not Path(tmp_dir).exists(), f"the renderer's temp dir {tmp_dir} was left behind"
    assert "Traceback" not in out, out
    assert "report.html not rendered" in out, out
    assert proc.returncode == 0, out  # the run itself was complete: its scenario passed
    # the scenario that passed before the signal is still in the journal
    (run_dir,) = [
        p for p in reports.iterdir() if (p / "journal.jsonl").is_file() and not p.is_symlink()
    ]
    lines = (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["outcome"] for line in lines] == ["passed"]


# -- unlock: autologon-reboot --------------------------------------------------------------------
def _autologon_lab(tmp_path: Path) -> Path:
    """The default virtual lab with tb-01 unlocked by Winlogon autologon and a reboot (no HID
    keyboard), as example_lab.yaml configures a lab without keyboard emulators."""
    lab = lab_with(tmp_path)
    text = lab.read_text()
    old = "      unlock: hid-keyboard\n      keyboard: keyboard-1\n"
    assert text.count(old) == 1
    lab.write_text(text.replace(old, "      unlock: autologon-reboot\n"))
    return lab


def _watch_truth(
    tmpdir: Path,
    proc: subprocess.Popen[str],
    dut: str,
    act: Callable[[dict[str, Any], list[str]], None] | None = None,
) -> list[tuple[float, dict[str, Any]]]:
    """Poll the virtual lab's control endpoint (its endpoints file is in the launcher's private
    temp dir under `tmpdir`) for `dut`'s truth until the run ends: every (time, truth) read.
    `act(truth, operation names)` is called after each read (to send signals at a point)."""
    from harness.virtual_lab.control import ControlClient

    seen: list[tuple[float, dict[str, Any]]] = []
    client: ControlClient | None = None
    end = time.monotonic() + DEADLINE_S
    while proc.poll() is None:
        assert time.monotonic() < end, "harness run did not finish"
        if client is None:
            for ep_file in tmpdir.glob("harness-vlab-*/endpoints.json"):
                try:
                    control = json.loads(ep_file.read_text())["control"]
                except (OSError, ValueError, KeyError):
                    continue
                client = ControlClient(control["url"], control["token"], timeout_s=2)
        if client is not None:
            try:
                truth = client.dut(dut)
                ops = [o["operation"] for o in client.operations(dut)]
            except Exception:  # the lab is stopping with the run
                time.sleep(0.05)
                continue
            seen.append((time.monotonic(), truth))
            if act is not None:
                act(truth, ops)
        time.sleep(0.05)
    return seen


def _at_baseline(truth: dict[str, Any]) -> bool:
    """tb-01 at the default virtual lab's baseline: no driver, DMAGuard absent, unlocked."""
    return (
        truth["driver_store"] == []
        and truth["dmaguard"] == {"pending": None, "at_boot": None}
        and truth["session"] == "unlocked"
        and truth["test_signing"] == {"pending": False, "active": False}
        and truth["power"] == "on"
    )


def _start(tmp_path: Path, plan: Path, lab: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    reports = tmp_path / "reports"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, SECRET_ENV: SECRET, "TMPDIR": str(tmpdir)}
    argv = [sys.executable, "-m", "harness", "run", str(plan)]
    argv += ["--lab", str(lab), "--reports", str(reports)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, reports, tmpdir


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        out, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out


def test_locked_scenarios_with_autologon_reboot_unlock(tmp_path: Path) -> None:
    """The sign-in reboot the harness asks for is its own, not a crash: the locked scenario
    passes, tb-01 is not quarantined and ends at its baseline (read from the lab's truth)."""
    plan = plan_file(tmp_path, "autologon", session=["locked"])
    proc, reports, tmpdir = _start(tmp_path, plan, _autologon_lab(tmp_path))
    try:
        truths = [t for _, t in _watch_truth(tmpdir, proc, "tb-01")]
    finally:
        out = _finish(proc)
    run_dir = (reports / "latest").resolve()
    lines = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]
    assert [(x["outcome"], "quarantined" in x) for x in lines] == [("passed", False)], out
    assert proc.returncode == 0, out
    td = json.loads((run_dir / "teardown" / "tb-01.json").read_text())
    assert td["ok"] and not td["quarantined"], td
    assert truths, "the lab's control endpoint was never read"
    boots = [t["boots"] for t in truths]
    assert boots[-1] > boots[0], "the unlock did not reboot the DUT"
    last = truths[-1]  # the lab's truth after the teardown (baseline: no driver, unlocked)
    assert last["session"] == "unlocked" and last["driver_store"] == [], last
    assert last["dmaguard"] == {"pending": None, "at_boot": None}, last
    assert last["test_signing"] == {"pending": False, "active": False}, last
    assert last["kdp_active"] is True and last["power"] == "on", last


# -- signals during the end-of-run teardown -------------------------------------------------------
SIGNALS = {
    "SIGTERM": (signal.SIGTERM,),
    "SIGINT,SIGINT": (signal.SIGINT, signal.SIGINT),
    "SIGTERM,SIGINT": (signal.SIGTERM, signal.SIGINT),
}
#: Ctrl-C twice from the middle of the scenario: at its plug, then at the teardown's uninstall.
MID = (signal.SIGINT, signal.SIGINT)


@pytest.mark.parametrize("signals", list(SIGNALS), ids=list(SIGNALS))
def test_signals_during_the_end_of_run_teardown_do_not_stop_it(
    tmp_path: Path, signals: str
) -> None:
    """A CI job's timeout (SIGTERM) or Ctrl-C (twice) while the run puts tb-01 back to its
    baseline (the plan's DMAGuard 1 needs a reboot to undo): the teardown runs to completion,
    the teardown record is written, the passed scenario stays in the journal, and the lab's
    truth shows tb-01 at its baseline. The first signal comes when the teardown has started
    (`driver_uninstall`), the second at its reboot (`reboot_request`)."""
    plan = plan_file(tmp_path, "teardown-signal", dmaguard=["1"])
    proc, reports, tmpdir = _start(tmp_path, plan, lab_with(tmp_path))
    to_send = list(SIGNALS[signals])
    sent: list[float] = []
    triggers = ["driver_uninstall", "reboot_request"]

    def act(_truth: dict[str, Any], ops: list[str]) -> None:
        if not to_send:
            return
        # the trigger must come after the scenario's own operations: count from the uninstall
        if "driver_uninstall" not in ops:
            return
        tail = ops[ops.index("driver_uninstall") :]
        if triggers[len(sent)] in tail:
            proc.send_signal(to_send.pop(0))
            sent.append(time.monotonic())

    try:
        truths = _watch_truth(tmpdir, proc, "tb-01", act)
    finally:
        out = _finish(proc)
    assert len(sent) == len(SIGNALS[signals]), f"signals not all sent:\n{out}"
    assert "Traceback" not in out, out
    run_dir = (reports / "latest").resolve()
    lines = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]
    assert [x["outcome"] for x in lines] == ["passed"], out
    td = json.loads((run_dir / "teardown" / "tb-01.json").read_text())
    assert td["ok"] and not td["quarantined"], td
    assert truths and _at_baseline(truths[-1][1]), truths[-1][1]
    back = next(t for t, truth in truths if t >= sent[-1] and _at_baseline(truth))
    print(f"\n{signals}: DUT at baseline {back - sent[-1]:.2f} s after the last signal")


def test_ctrl_c_twice_from_the_middle_of_a_scenario(tmp_path: Path) -> None:
    """Ctrl-C while the scenario waits for its device, again when the teardown starts: the
    scenario and the end-of-run teardown still run to completion (tb-01 without the driver,
    DMAGuard back to absent, by the lab's truth), with a teardown record; no traceback."""
    plan = plan_file(tmp_path, "ctrl-c-twice", dmaguard=["1"])
    proc, reports, tmpdir = _start(tmp_path, plan, lab_with(tmp_path))
    to_send = list(MID)
    sent: list[float] = []

    def act(_truth: dict[str, Any], ops: list[str]) -> None:
        if not to_send:
            return
        after_config = ops[ops.index("dmaguard_set") :] if "dmaguard_set" in ops else []
        first = not sent and "pnp_devices" in after_config
        second = bool(sent) and "driver_uninstall" in ops
        if first or second:
            proc.send_signal(to_send.pop(0))
            sent.append(time.monotonic())

    try:
        truths = _watch_truth(tmpdir, proc, "tb-01", act)
    finally:
        out = _finish(proc)
    assert len(sent) == 2, f"signals not all sent:\n{out}"
    assert "Traceback" not in out, out
    run_dir = (reports / "latest").resolve()
    td = json.loads((run_dir / "teardown" / "tb-01.json").read_text())
    assert td["ok"] and not td["quarantined"], td
    assert truths and _at_baseline(truths[-1][1]), truths[-1][1]
    back = next(t for t, truth in truths if t >= sent[-1] and _at_baseline(truth))
    print(f"\nCtrl-C twice: DUT at baseline {back - sent[-1]:.2f} s after the second Ctrl-C")


def test_a_run_with_autologon_reboot_leaves_autologon_off(tmp_path: Path) -> None:
    """The sign-in by autologon leaves Winlogon's AutoAdminLogon and the DUT password as the LSA
    secret DefaultPassword on the DUT; the end-of-run teardown turns both off again (lab's
    truth), or every later boot signs in by itself with a password kept on the DUT."""
    plan = plan_file(tmp_path, "autologon-off", session=["locked"])
    proc, reports, tmpdir = _start(tmp_path, plan, _autologon_lab(tmp_path))
    try:
        truths = [t for _, t in _watch_truth(tmpdir, proc, "tb-01")]
    finally:
        out = _finish(proc)
    assert proc.returncode == 0, out
    winlogon = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
    during = [t for t in truths if "DefaultPassword" in t["lsa_secrets"]]
    assert during, "autologon was never set: the test does not test anything"
    assert during[0]["registry"][winlogon]["AutoAdminLogon"] == "1"
    last = truths[-1]
    assert last["registry"].get(winlogon, {}).get("AutoAdminLogon", "0") == "0", last["registry"]
    assert "DefaultPassword" not in last["lsa_secrets"], last["lsa_secrets"]
    assert "DefaultPassword" not in last["registry"].get(winlogon, {}), last["registry"]
    assert _at_baseline(last), last
    td = json.loads(((reports / "latest").resolve() / "teardown" / "tb-01.json").read_text())
    assert td["ok"], td
