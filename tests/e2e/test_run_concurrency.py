"""Two `harness run`s started together into one reports folder (issue 18): each gets a run
directory of its own (an exclusive mkdir, `-2` on a name taken in the same second), both finish
with exit 0 and their own run.json; `-n 1000` is capped at the DUTs that run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def start(
    reports: Path, dut: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "testplans/smoke.yaml",
            "--dut",
            dut,
            "--scenario",
            "*.inf0.*.unlocked",
            "--reports",
            str(reports),
            "--no-report",  # what is checked here is no report's business
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_runs_in_the_same_second_get_their_own_run_directories(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    now = datetime.now(timezone.utc)
    # Every name a run could take in the next minute is taken already by "another run": the
    # two runs below collide with it and with each other whatever second they start in.
    for s in range(60):
        (reports / f"{(now + timedelta(seconds=s)).strftime('%Y%m%dT%H%M%SZ')}-smoke").mkdir()
    runs = {"tb-01": start(reports, "tb-01", "-n", "1000"), "m2-01": start(reports, "m2-01")}
    out = {dut: p.communicate(timeout=TIMEOUT_S) for dut, p in runs.items()}
    for dut, p in runs.items():
        assert p.returncode == 0, out[dut][0] + out[dut][1]
        assert "Traceback" not in out[dut][1]
    infos = {  # reports/latest is a symlink to one of them (glob's order is the directory's)
        json.loads(f.read_text())["filters"]["duts"][0]: (f.parent, json.loads(f.read_text()))
        for f in reports.glob("*/run.json")
        if not f.parent.is_symlink()
    }
    assert set(infos) == {"tb-01", "m2-01"}
    (dir_a, info_a), (dir_b, info_b) = infos["tb-01"], infos["m2-01"]
    assert dir_a != dir_b  # and neither took the name of the run that was there before
    assert dir_a.name.rsplit("-", 1)[1].isdigit() and dir_b.name.rsplit("-", 1)[1].isdigit()
    assert info_a["run_id"] == dir_a.name and info_b["run_id"] == dir_b.name
    assert info_a["exit_code"] == 0 and info_b["exit_code"] == 0
    for d, dut in ((dir_a, "tb-01"), (dir_b, "m2-01")):
        lines = [json.loads(x) for x in (d / "journal.jsonl").read_text().splitlines()]
        assert lines and {x["dut"] for x in lines} == {dut}
    # -n 1000 on a selection that runs on one DUT: one worker
    assert "-n 1000: capped at 1" in out["tb-01"][0]
    assert info_a["workers"] == "1"


def test_a_run_leaves_no_lease_files_behind(tmp_path: Path) -> None:
    """Lease lock files of a finished run are removed (they piled up in the shared lease
    directory); a run started afterwards on the same DUT leases it again."""
    leases = tmp_path / "leases-root"
    env = {**os.environ, "HARNESS_LEASE_DIR": str(leases)}
    for _ in range(2):
        p = start(tmp_path / "reports", "tb-01", env=env)
        stdout, stderr = p.communicate(timeout=TIMEOUT_S)
        assert p.returncode == 0, stdout + stderr
        assert (leases / "leases").is_dir()
        assert sorted(x.name for x in (leases / "leases").iterdir()) == []


def test_secrets_of_a_sigkilled_lab_are_removed_by_the_next_lab(tmp_path: Path) -> None:
    """A lab process tree SIGKILLed (the OOM killer) leaves its generated passwords in the temp
    directory (`harness-ntlm-users-<pid>.txt`, `harness-vlab-*/endpoints.json`): the next lab
    removes those of dead processes at its start and leaves a live process's alone."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale_users = tmp / f"harness-ntlm-users-{dead_pid}.txt"
    stale_users.write_text("DOMAIN:user:S3cret-left-behind\n")
    stale_lab = tmp / "harness-vlab-stale"
    stale_lab.mkdir()
    (stale_lab / "owner.pid").write_text(f"{dead_pid}\n")
    (stale_lab / "endpoints.json").write_text('{"password": "S3cret-left-behind"}')
    live_users = tmp / f"harness-ntlm-users-{os.getpid()}.txt"
    live_users.write_text("DOMAIN:user:live\n")
    env = {**os.environ, "TMPDIR": str(tmp), "HARNESS_LEASE_DIR": str(tmp_path / "leases")}
    p = start(tmp_path / "reports", "tb-01", env=env)
    stdout, stderr = p.communicate(timeout=TIMEOUT_S)
    assert p.returncode == 0, stdout + stderr
    assert not stale_users.exists() and not stale_lab.exists()
    assert live_users.exists()
    leftovers = [
        x for x in tmp.rglob("*") if x.is_file() and "S3cret" in x.read_text(errors="replace")
    ]
    assert leftovers == []
