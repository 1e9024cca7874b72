"""The virtual lab's launcher signals a child's process group only while the child is not
reaped (harness/virtual_lab/launcher.py). Once reaped, its pid, which is also its group id, is
free; pid_max wraps within minutes on a busy controller (32768 here; every thread takes an id),
and the id may then be another run's lab or pytest, whose whole group a SIGKILL would end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from harness.virtual_lab import launcher


def test_a_reaped_child_gets_no_signal_through_its_old_group_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    assert proc.wait(timeout=30) == 0  # reaped: the system may give its pid to anyone now
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: sent.append((pgid, sig)))
    assert launcher._terminate(proc, 1.0) == 0
    assert sent == []  # before: SIGKILL to the stale group id


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_leader_that_exited_unreaped_has_its_group_ended_then_is_reaped() -> None:
    code = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    orphan = int(proc.stdout.readline())
    deadline = time.monotonic() + 30
    while not launcher._exited_unreaped(proc):  # the leader is a zombie; its group lives on
        assert time.monotonic() < deadline, "the leader did not exit"
        time.sleep(0.02)
    assert proc.returncode is None and not _gone(orphan)
    try:
        assert launcher._terminate(proc, 5.0) == 0
        deadline = time.monotonic() + 30
        while not _gone(orphan):  # SIGKILLed with its group, then reaped by init
            assert time.monotonic() < deadline, "the leader's group was left running"
            time.sleep(0.02)
    finally:
        if not _gone(orphan):
            os.kill(orphan, signal.SIGKILL)
        proc.stdout.close()
