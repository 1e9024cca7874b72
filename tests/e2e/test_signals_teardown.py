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
from pathlib import Path

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
