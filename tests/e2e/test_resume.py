"""`harness run --resume RUN_DIR` end to end: the real CLI in subprocesses, a run whose controller
(or every process of it) is killed with SIGKILL mid-run, then resumed into the same run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from harness.cli.run_attempts import alive
from harness.report.allure_prune import scenario_of
from tests.e2e.test_cli_run import (
    LAB,
    ROOT,
    TIMEOUT_S,
    allure_results,
    harness_run,
    journal,
    plan_file,
)

SMOKE = ROOT / "testplans" / "smoke.yaml"
SCENARIOS = 4  # of `_plan`
FINAL = {"passed", "observed", "failed", "expectation-may-be-wrong", "dut-error"}
FINAL |= {"infrastructure-error", "harness-bug"}


def _plan(tmp_path: Path) -> Path:
    """The smoke plan on tb-01 only: 4 scenarios (2 driver packages, unlocked and locked)."""
    text = SMOKE.read_text()  # edited as text: a YAML round trip would turn on/off into booleans
    for old, new in (
        ("name: smoke", "name: resume"),
        ("names: [tb-01, m2-01]", "names: [tb-01]"),
        ("devices: [nvme-tb, nvme-m2]", "devices: [nvme-tb]"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "resume.yaml"
    path.write_text(text)
    return path


def _start(plan: Path, reports: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(plan), "--reports", str(reports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_records(proc: subprocess.Popen[str], reports: Path, count: int) -> Path:
    """The run directory, once its journal has `count` lines (and pytest and the lab started)."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, f"fewer than {count} scenarios finished in 120 s"
        for j in reports.glob("*/journal.jsonl"):
            if len(j.read_text().splitlines()) >= count:
                return j.parent
        time.sleep(0.1)


def _wait_for_run_dir(proc: subprocess.Popen[str], reports: Path) -> Path:
    """The run directory, once run.json names the attempt's pytest (the run is under way)."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the run did not start pytest in 120 s"
        for info in reports.glob("*/run.json"):
            with contextlib.suppress(ValueError, KeyError, IndexError):  # being written
                if json.loads(info.read_text())["attempts"][-1].get("pytest_pid"):
                    return info.parent
        time.sleep(0.1)


def _pids(run_dir: Path) -> list[tuple[int, str | None]]:
    info = json.loads((run_dir / "run.json").read_text())
    return [
        (a[key], a.get(f"{key}_start"))
        for a in info["attempts"]
        for key in ("pid", "pytest_pid", "lab_pid")
        if a.get(key)
    ]


def _wait_all_gone(pids: list[tuple[int, str | None]], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while any(alive(p, s) for p, s in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p, s in pids if alive(p, s)]


def _kill_mid_run(tmp_path: Path, *, everything: bool) -> tuple[Path, list[dict[str, Any]]]:
    reports = tmp_path / "reports"
    proc = _start(_plan(tmp_path), reports)
    try:
        if everything:  # while the controller lives, the run cannot be resumed
            # Asked before the scenarios end: after the second one, the rest of the run takes
            # about 2 s, and a busy machine can take that long to start `harness`.
            busy = harness_run("--resume", str(_wait_for_run_dir(proc, reports)))
            assert busy.returncode == 2 and "being run right now" in busy.stderr, busy.stderr
        run_dir = _wait_for_records(proc, reports, 2)
        # killed at once: if it lands between a scenario's journal line and its Allure result,
        # the resume rebuilds the result from the journal (test_resume_journal_allure.py)
        attempt = json.loads((run_dir / "run.json").read_text())["attempts"][-1]
        before = journal(run_dir)
        os.kill(proc.pid, signal.SIGKILL)
        if everything:
            for key in ("pytest_pid", "lab_pid"):  # each leads its own process group
                # Gone already is fine: each ends itself when it sees its controller die (the
                # lifeline). Not our children, so their ids are free once they end: signal
                # only the process that started when run.json says (never a reused id).
                if alive(attempt[key], attempt.get(f"{key}_start")):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(attempt[key], signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before it was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return run_dir, before


def _check_resumed(run_dir: Path, before: list[dict[str, Any]]) -> None:
    r = harness_run("--resume", str(run_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((run_dir / "run.json").read_text())
    lines = journal(run_dir)
    # nothing recorded was lost or rewritten; what was final then was not run again
    assert lines[: len(before)] == before
    done = {x["scenario"] for x in before if x["outcome"] in FINAL}
    assert len(done) >= 2
    assert not done & {x["scenario"] for x in lines[len(before) :]}
    finals = Counter(x["scenario"] for x in lines if x["outcome"] in FINAL)
    assert set(finals) == set(info["scenarios"]) and len(info["scenarios"]) == SCENARIOS
    assert set(finals.values()) == {1}, finals
    # the report lists each scenario once
    named = Counter(scenario_of(x) for x in allure_results(run_dir))
    assert named == Counter(info["scenarios"]), named
    suite = ET.parse(run_dir / "junit.xml").getroot()
    cases = Counter(c.get("name") for c in suite.iter("testcase"))
    assert len(cases) == SCENARIOS and set(cases.values()) == {1}, cases
    assert (run_dir / "report.html").is_file()
    first, second = info["attempts"]
    assert first["ended"] is None and not first["resumed"]
    assert second["resumed"] and second["exit_code"] == 0 and info["exit_code"] == 0
    assert second["scenarios"] == SCENARIOS - len(done)
    assert _wait_all_gone(_pids(run_dir), 10) == []
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a process of the run is still running"
    assert not Path(first["lab_tempdir"]).exists()


def test_resume_after_the_controller_is_killed(tmp_path: Path) -> None:
    run_dir, before = _kill_mid_run(tmp_path, everything=False)
    # the orphaned pytest child and virtual lab notice and stop by themselves
    assert _wait_all_gone(_pids(run_dir), 60) == []
    assert "KeyboardInterrupt" in (run_dir / "pytest.log").read_text()  # torn down as on Ctrl-C
    _check_resumed(run_dir, before)
    # again: nothing is left, the run is re-rendered and keeps its code
    lines = journal(run_dir)
    again = harness_run("--resume", str(run_dir), "--no-report")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing left to run" in again.stdout
    # --no-report: the earlier attempt's report.html no longer shows the whole run
    assert not (run_dir / "report.html").exists()
    assert (
        "report.html not rendered (--no-report; the earlier attempt's one was removed): "
        f"render it with `harness report {run_dir}`" in again.stdout
    )
    assert journal(run_dir) == lines
    assert len(json.loads((run_dir / "run.json").read_text())["attempts"]) == 3


def test_resume_after_every_process_of_the_run_is_killed(tmp_path: Path) -> None:
    run_dir, before = _kill_mid_run(tmp_path, everything=True)
    _check_resumed(run_dir, before)


def _fake_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run directory (never run) of a one-scenario plan, and the plan file."""
    plan = plan_file(tmp_path, "tiny", session=["unlocked"])
    run_dir = tmp_path / "reports" / "20260101T000000Z-tiny"
    (run_dir / "allure-results").mkdir(parents=True)
    info = {
        "run_id": run_dir.name,
        "plan": str(plan),
        "plan_name": "tiny",
        "purpose": "manual",
        "lab": str(LAB),
        "lab_sha256": hashlib.sha256(LAB.read_bytes()).hexdigest(),
        "harness_version": "0",
        "started": "2026-01-01T00:00:00+00:00",
        "scenarios": ["tb-01.x"],
        "plan_sha256": hashlib.sha256(plan.read_bytes()).hexdigest(),
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir, plan


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*")}


def test_resume_refuses_bad_requests_and_writes_nothing(tmp_path: Path) -> None:
    run_dir, plan = _fake_run(tmp_path)
    r = harness_run("--resume", str(run_dir), str(SMOKE))
    assert r.returncode == 2 and "not with PLAN" in r.stderr, r.stderr
    r = harness_run(
        "--resume", str(run_dir), "--scenario", "tb-*", "--dut", "tb-01", "--last-failed"
    )
    assert r.returncode == 2, r.stderr
    assert all(o in r.stderr for o in ("--scenario", "--dut", "--last-failed")), r.stderr
    r = harness_run("--resume", str(tmp_path))
    assert r.returncode == 2 and "not a run directory" in r.stderr, r.stderr
    before = _snapshot(run_dir)
    plan.write_text(plan.read_text() + "# edited\n")
    r = harness_run("--resume", str(run_dir))
    assert r.returncode == 2 and str(plan) in r.stderr and "changed" in r.stderr, r.stderr
    assert _snapshot(run_dir) == before
    r = harness_run()
    assert r.returncode == 2 and "PLAN" in r.stderr


def test_started_as_cron_starts_it_killed_with_its_group_then_resumed(tmp_path: Path) -> None:
    """cron, CI agents and `nohup ... &` start the run in the background of a non-interactive
    shell: its own session, no TTY, no stdin, SIGINT ignored (inherited by every child). A
    SIGKILL of the controller's process group must still leave no process behind once the
    current scenario has torn down, and a resume started at once must wait for the old
    processes before it decides what is left: every scenario is journaled exactly once."""
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(_plan(tmp_path)), "--reports", str(reports)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # setsid: no controlling terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        # `latest` names the run while it runs, so a crash still says what to resume
        run_dir = _wait_for_records(proc, reports, 1)
        assert (reports / "latest").resolve() == run_dir.resolve()
        before = journal(run_dir)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    # resume at once, without naming the run (the newest interrupted one under --reports): it
    # must wait for the orphans, then compute what is left
    r = harness_run("--resume", "--reports", str(reports))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"the newest interrupted run is {run_dir.resolve()}" in r.stdout, r.stdout
    gone_after = time.monotonic() - killed
    print(f"kill -9 of the group -> resumed run finished: {gone_after:.1f} s")
    lines = journal(run_dir)
    assert lines[: len(before)] == before
    info = json.loads((run_dir / "run.json").read_text())
    finals = Counter(x["scenario"] for x in lines if x["outcome"] in FINAL)
    assert set(finals) == set(info["scenarios"]) and set(finals.values()) == {1}, finals
    assert _wait_all_gone(_pids(run_dir), 10) == []
    # the orphans stopped within the scenario teardown budget, not the run's 300 s grace
    first = info["attempts"][0]
    pytest_log = (run_dir / "pytest.log").read_text()
    assert "KeyboardInterrupt" in pytest_log, pytest_log[-2000:]
    assert first["ended"] is None


def _pipe_ends(pid: int) -> dict[int, set[str]]:
    """pipe inode -> the ends ("r", "w") process `pid` holds, from /proc/PID/fd and fdinfo."""
    ends: dict[int, set[str]] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue  # closed meanwhile
        if not target.startswith("pipe:["):
            continue
        flags = int(next(x for x in info.splitlines() if x.startswith("flags:")).split()[1], 8)
        ends.setdefault(int(target[6:-1]), set()).add("w" if flags & 0o3 else "r")
    return ends


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def test_each_process_holds_only_its_own_lifeline_ends(tmp_path: Path) -> None:
    """The controller holds the write ends of two lifelines: pytest's (pytest holds its read
    end) and the virtual lab's (the lab holds its read end; pytest holds a write end too, so
    the lab outlives pytest's teardown). Nobody else holds any of them: not the lab (it would
    keep pytest alive), not pytest's xdist workers, and pytest not its own lifeline's write end
    (it would never see EOF)."""
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(SMOKE), "--reports", str(reports), "-n", "2"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_dir = _wait_for_records(proc, reports, 1)
        attempt = json.loads((run_dir / "run.json").read_text())["attempts"][-1]
        controller, pytest_pid, lab_pid = proc.pid, attempt["pytest_pid"], attempt["lab_pid"]
        workers = _children(pytest_pid)
        assert len(workers) == 2, workers  # -n 2
        held = {pid: _pipe_ends(pid) for pid in (controller, pytest_pid, lab_pid, *workers)}
    finally:
        proc.wait(timeout=TIMEOUT_S)
    pytest_life = [i for i, e in held[pytest_pid].items() if held[controller].get(i) == {"w"}]
    pytest_life = [i for i in pytest_life if held[pytest_pid][i] == {"r"}]
    lab_life = [i for i, e in held[lab_pid].items() if e == {"r"} and i in held[controller]]
    assert len(pytest_life) == 1 and len(lab_life) == 1, held
    (pl,), (ll,) = pytest_life, lab_life
    assert held[controller][pl] == {"w"} and held[controller][ll] == {"w"}
    assert held[pytest_pid][pl] == {"r"}  # not the write end: it must see EOF
    assert held[pytest_pid][ll] == {"w"}  # the lab waits for pytest's teardown
    assert pl not in held[lab_pid]  # the lab does not keep pytest's lifeline open
    for w in workers:
        assert pl not in held[w] and ll not in held[w], (w, held[w])
    assert proc.returncode == 0
