"""Plain `pytest -n 2 --dma-plan ...` (no `harness run`): the plugin chooses the distribution,
each DUT's scenarios run on one worker, and the run starts one virtual lab, not one per worker.
The plan and lab can also come from the ini file or the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "testplans" / "smoke.yaml"
LAB = ROOT / "lab_config" / "virtual.yaml"
TESTS = ROOT / "testplans" / "test_scenarios.py"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _labs_under(pid: int) -> set[int]:
    """The virtual lab processes under `pid`. A lab's own children are not labs: between fork
    and exec a child of the lab (a subprocess it starts) still shows the lab's command line."""
    labs = set()
    for child in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness.virtual_lab" in cmdline:
            labs.add(child)
    inside = {c for lab in labs for c in _descendants(lab)}
    return labs - inside


def test_two_workers_one_lab_each_dut_on_one_worker(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "pytest", str(TESTS), "-p", "no:cacheprovider", "-q"]
    cmd += ["--rootdir", str(ROOT / "testplans"), "-n", "2", "--dma-plan", str(SMOKE)]
    cmd += ["--dma-lab", str(LAB), "--dma-run-dir", str(run_dir)]
    run_dir.mkdir()
    log = tmp_path / "pytest.log"
    labs: set[int] = set()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + 300
        while proc.poll() is None:
            assert time.monotonic() < deadline, "pytest -n 2 did not finish"
            labs |= _labs_under(proc.pid)
            time.sleep(0.05)  # sampling the process tree while it runs
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "8 passed" in text, text
    assert len(labs) == 1, f"virtual labs started: {sorted(labs)}"
    entries = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    assert len(entries) == 8
    workers_of: dict[str, set[str]] = {}
    for e in entries:
        workers_of.setdefault(e["dut"], set()).add(e["worker"])
    assert all(len(w) == 1 for w in workers_of.values()), workers_of
    assert len(set().union(*workers_of.values())) == 2, workers_of  # both workers drove a DUT


def test_plan_and_lab_from_the_ini_file_and_the_environment(tmp_path: Path) -> None:
    ini = tmp_path / "pytest.ini"
    ini.write_text(f"[pytest]\ndma_plan = {SMOKE}\ndma_lab = {LAB}\n")
    cmd = [sys.executable, "-m", "pytest", str(TESTS), "-p", "no:cacheprovider", "-q"]
    cmd += ["-c", str(ini), "--rootdir", str(tmp_path), "--dma-scenario", "m2-01.*"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and "passed" in r.stdout, r.stdout + r.stderr
    n_ini = int(r.stdout.split(" passed")[0].split()[-1])
    env = dict(os.environ, DMA_HARNESS_PLAN=str(SMOKE), DMA_HARNESS_LAB=str(LAB))
    cmd = [sys.executable, "-m", "pytest", str(TESTS), "-p", "no:cacheprovider", "-q"]
    cmd += ["--rootdir", str(tmp_path), "--dma-scenario", "m2-01.*", "--collect-only"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{n_ini} tests collected" in r.stdout, r.stdout
    assert n_ini >= 1
