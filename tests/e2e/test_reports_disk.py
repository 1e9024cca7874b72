"""A reports folder that fills up mid-run, and one that is read-only, through `harness run`.

The reports folder is a real file system that really fills or really refuses writes: a tmpfs
mounted in a private mount namespace (`unshare --user --map-root-user --mount`), which needs no
root on a kernel that allows unprivileged user namespaces, and works for root too (CI). A
read-only mount refuses root as well, so the read-only case means the same whoever runs it
(permission bits would not: root ignores them). The harness runs inside the namespace; the test
fills the tmpfs through `/proc/<pid>/root` when the first scenario is journaled, and reads
tb-01's state from the virtual lab's control endpoint, not from the harness's report.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_cli_run import ROOT, SECRET, SECRET_ENV, lab_with, plan_file
from tests.e2e.test_signals_teardown import _at_baseline, _finish, _watch_truth


def _in_namespace(mount: str, command: list[str], after: str = "") -> list[str]:
    """`command` in a private user+mount namespace where `mount` (a shell line) ran first."""
    line = f"{mount} && {shlex.join(command)}; rc=$?; {after}exit $rc"
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", line]


def _fill(directory: Path) -> str:
    """Write zeros into `directory` until its file system refuses: the refusal's text."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            return str(exc)


def test_the_reports_disk_fills_mid_run(tmp_path: Path) -> None:
    """The first scenario is journaled, then the reports disk is full: the run stops without a
    traceback, the end-of-run teardown still puts tb-01 back to its baseline (driver removed,
    DMAGuard absent again, by the lab's truth), its record (refused by the disk) is shown on
    the controller's stderr, run.json is not torn, and the run ends with exit 3 and a message
    naming the folder and the refusal; once there is space, --resume runs the other scenario."""
    plan = plan_file(tmp_path, "disk-full", dmaguard=["1"], session=["locked", "unlocked"])
    reports, kept, tmpdir = tmp_path / "reports", tmp_path / "kept", tmp_path / "tmp"
    reports.mkdir()
    tmpdir.mkdir()
    harness = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_with(tmp_path))]
    resume = [sys.executable, "-m", "harness", "run", "--resume", str(reports / "latest")]
    argv = _in_namespace(
        f"mount -t tmpfs -o size=8m tmpfs {shlex.quote(str(reports))}",
        [*harness, "--reports", str(reports)],
        # space again: --resume finishes the run; then what it left is copied out of the tmpfs
        after=f"rm -f {reports}/filler; {shlex.join(resume)} >{tmp_path}/resume.txt 2>&1; "
        f"echo $? >{tmp_path}/resume-rc; mkdir {kept}; cp -a {reports}/. {kept}/; ",
    )
    env = {**os.environ, SECRET_ENV: SECRET, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    inside = Path(f"/proc/{proc.pid}/root{reports}")  # the tmpfs, seen from outside
    filled: list[tuple[float, str]] = []

    def act(_truth: dict[str, Any], _ops: list[str]) -> None:
        if filled:
            return
        journals = list(inside.glob("*/journal.jsonl"))
        if journals and journals[0].read_text(encoding="utf-8").count("\n") >= 1:
            filled.append((time.monotonic(), _fill(inside)))

    try:
        truths = _watch_truth(tmpdir, proc, "tb-01", act)
    finally:
        out = _finish(proc)
    assert filled and "No space left on device" in filled[0][1], f"never filled:\n{out}"
    assert "Traceback" not in out, out
    assert proc.returncode == 3, out
    assert f"the reports folder {reports} takes no more writes" in out, out
    assert "No space left on device" in out, out
    # the teardown record could not be written: it reached the user on the controller's stderr
    (line,) = [x for x in out.splitlines() if "teardown record of tb-01 not written" in x]
    record = json.loads(line[line.index("{") :])
    assert record["ok"] and record["dut"] == "tb-01" and record["uninstalled"], record
    # after the fill tb-01 was off its baseline (DMAGuard 1, the driver installed), then back
    after = [truth for t, truth in truths if t >= filled[0][0]]
    assert after and not _at_baseline(after[0]), after[:1]
    assert _at_baseline(truths[-1][1]), truths[-1][1]
    (run_dir,) = [p for p in kept.iterdir() if (p / "run.json").is_file() and not p.is_symlink()]
    info = json.loads((run_dir / "run.json").read_text())  # whole, not torn
    assert len(info["scenarios"]) == 2
    lines = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]
    # the first scenario was kept, and --resume ran the second once there was space again
    assert [x["outcome"] for x in lines] == ["passed", "passed"], lines
    resumed = (tmp_path / "resume.txt").read_text()
    assert (tmp_path / "resume-rc").read_text().strip() == "0", resumed
    assert "1 of 2 scenarios have no final outcome" in resumed, resumed


def _no_lab_was_started(tmpdir: Path) -> None:
    assert not list(tmpdir.glob("harness-vlab-*")), list(tmpdir.iterdir())


def test_a_read_only_reports_folder_is_refused_before_any_lab_action(tmp_path: Path) -> None:
    """`--reports` on a read-only mount (and a folder to create under one): exit 2 naming the
    folder, no traceback, no virtual lab started, for root as for anyone."""
    plan = plan_file(tmp_path, "read-only")
    reports, tmpdir = tmp_path / "reports", tmp_path / "tmp"
    reports.mkdir()
    tmpdir.mkdir()
    harness = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_with(tmp_path))]
    env = {**os.environ, SECRET_ENV: SECRET, "TMPDIR": str(tmpdir)}
    for target in (reports, reports / "nightly"):
        argv = _in_namespace(
            f"mount -t tmpfs -o ro tmpfs {shlex.quote(str(reports))}",
            [*harness, "--reports", str(target)],
        )
        r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        out = r.stdout + r.stderr
        assert r.returncode == 2, out
        assert "Traceback" not in out, out
        assert f"{target}: --reports: the reports folder cannot be written" in r.stderr, out
        assert "Read-only file system" in r.stderr, out
        assert "starting the virtual lab" not in out, out
        _no_lab_was_started(tmpdir)


def _two_dut_plan(tmp_path: Path) -> Path:
    """Both DUTs (each on its own xdist worker with -n 2), DMAGuard 1, two scenarios each."""
    plan = {
        "name": "disk-full-xdist",
        "purpose": "manual",
        "duts": {"names": ["tb-01", "m2-01"]},
        "devices": ["nvme-tb", "nvme-m2"],
        "driver_packages": ["nvme-inf0"],
        "matrix": {
            "kdp": ["on"],
            "dmaguard": ["1"],
            "session": ["locked", "unlocked"],
            "port": ["external", "exposed"],
        },
        "timeouts": {"scenario_s": 300, "step_s": 120, "reboot_s": 120, "plug_s": 30},
    }
    path = tmp_path / "two.yaml"
    path.write_text(json.dumps(plan))
    return path


def test_the_reports_disk_fills_mid_run_with_xdist_workers(tmp_path: Path) -> None:
    """With -n 2 (a worker per DUT; the xdist controller journals for both): the run stops once
    the disk is full, both DUTs' teardowns run in their workers (both at baseline by the lab's
    truth), exit 3 with the message, no traceback."""
    from harness.virtual_lab.control import ControlClient, ControlError

    reports, tmpdir = tmp_path / "reports", tmp_path / "tmp"
    reports.mkdir()
    tmpdir.mkdir()
    harness = [sys.executable, "-m", "harness", "run", str(_two_dut_plan(tmp_path))]
    harness += ["--lab", str(lab_with(tmp_path)), "-n", "2", "--reports", str(reports)]
    argv = _in_namespace(f"mount -t tmpfs -o size=8m tmpfs {shlex.quote(str(reports))}", harness)
    env = {**os.environ, SECRET_ENV: SECRET, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    inside = Path(f"/proc/{proc.pid}/root{reports}")
    filled: list[tuple[float, str]] = []
    m2: list[dict[str, Any]] = []
    clients: list[ControlClient] = []

    def act(_truth: dict[str, Any], _ops: list[str]) -> None:
        if not clients:
            for ep_file in tmpdir.glob("harness-vlab-*/endpoints.json"):
                control = json.loads(ep_file.read_text())["control"]
                clients.append(ControlClient(control["url"], control["token"], timeout_s=2))
        if clients:
            try:
                m2.append(clients[0].dut("m2-01"))
            except ControlError:  # the lab stops with the run (as in _watch_truth)
                return
        journals = list(inside.glob("*/journal.jsonl"))
        if not filled and journals and journals[0].read_text(encoding="utf-8").count("\n") >= 1:
            filled.append((time.monotonic(), _fill(inside)))

    try:
        truths = _watch_truth(tmpdir, proc, "tb-01", act)
    finally:
        out = _finish(proc)
    assert filled and "No space left on device" in filled[0][1], f"never filled:\n{out}"
    assert "Traceback" not in out, out
    assert proc.returncode == 3, out
    assert f"the reports folder {reports} takes no more writes" in out, out
    assert _at_baseline(truths[-1][1]), truths[-1][1]
    assert any(not _at_baseline(t) for t in m2), "m2-01 was never off its baseline"
    assert _at_baseline(m2[-1]), m2[-1]


def test_a_run_with_its_stderr_closed(tmp_path: Path) -> None:
    """A controller started without a stderr (a daemon's `2>&-`) has none to hand pytest for
    its notices: the run goes on without."""
    plan = plan_file(tmp_path, "no-stderr")
    harness = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_with(tmp_path))]
    harness += ["--reports", str(tmp_path / "reports")]
    r = subprocess.run(
        ["sh", "-c", f"exec 2>&-; exec {shlex.join(harness)}"],
        cwd=ROOT,
        env={**os.environ, SECRET_ENV: SECRET},
        stdout=subprocess.PIPE,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout
    assert "1 of 1 scenarios: 1 passed" in r.stdout, r.stdout
