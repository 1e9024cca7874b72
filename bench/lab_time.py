"""Benchmark: lab time of a plan on 1, 2 and 4 DUTs, modelled and measured on the virtual lab.

    python3 bench/lab_time.py                        # nightly on lab_config/virtual_pool.yaml
    python3 bench/lab_time.py --no-run               # the modelled figures only (seconds)
    python3 bench/lab_time.py --scenario '*.inf0.*'  # a quicker measured run

Prints (markdown tables, for docs/performance.md):

1. Reboots on every shipped plan and lab: our schedule vs plan order vs the lower bound.
2. Modelled, with the lab's cost model (real-world defaults): per DUT count, the reboots, the
   lab hours (sum over DUTs) and the wall time (the busiest DUT), and the speed-up over 1 DUT.
3. Measured on the virtual lab (`harness run PLAN --lab LAB --dut ... -n N`, time_scale from
   the lab file): wall time, speed-up, reboots taken (from the journal and teardown records),
   remote operations per scenario, and the CPU time and peak RSS of the whole process tree
   (controller, pytest workers and the virtual lab, which runs on the same machine here).

Not a test: it prints figures. The 1-DUT run of the nightly plan takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.config.lab import Lab, load_lab  # noqa: E402
from harness.config.plan import load_plan  # noqa: E402
from harness.config.scenarios import expand, select  # noqa: E402
from harness.lab.schedule import Schedule, package_drivers, schedule  # noqa: E402


def _schedule(plan: Path, lab: Lab, duts: list[str] | None, pattern: str | None) -> Schedule:
    scenarios = select(expand(load_plan(plan), lab), duts=duts, pattern=pattern)
    return schedule(scenarios, lab, package_drivers(lab, scenarios))


def shipped_reboots() -> list[str]:
    rows = [
        "| plan | lab | scenarios | reboots (ours) | plan order | lower bound |",
        "|---|---|---|---|---|---|",
    ]
    for lab_file in ("virtual.yaml", "virtual_pool.yaml"):
        lab = load_lab(ROOT / "lab_config" / lab_file)
        for plan in sorted((ROOT / "testplans").glob("*.yaml")):
            try:
                sched = _schedule(plan, lab, None, None)
            except Exception as exc:  # e.g. smoke names DUTs the pool lab does not have
                rows.append(f"| {plan.stem} | {lab_file} | - | not applicable: {exc} | | |")
                continue
            t = sched.totals()
            rows.append(
                f"| {plan.stem} | {lab_file} | {t['count']} | {t['reboots']} | "
                f"{t['plan_order_reboots']} | {t['reboot_lower_bound']} |"
            )
    return rows


def modelled(plan: Path, lab: Lab, counts: list[int], pattern: str | None) -> list[str]:
    members = list(lab.duts)
    rows = [
        "| DUTs | scenarios | reboots (ours) | plan order | lower bound | lab hours | "
        "wall hours | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = None
    for n in counts:
        t = _schedule(plan, lab, members[:n], pattern).totals()
        wall = t["estimated_wall_s"]
        base = base or wall
        rows.append(
            f"| {n} | {t['count']} | {t['reboots']} | {t['plan_order_reboots']} | "
            f"{t['reboot_lower_bound']} | {t['estimated_lab_s'] / 3600:.2f} | "
            f"{wall / 3600:.2f} | {base / wall:.2f}x |"
        )
    return rows


def _children_usage() -> tuple[float, int]:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss  # maxrss: KiB on Linux


def measured_run(
    plan: Path, lab_file: Path, duts: list[str], pattern: str | None, reports: Path
) -> dict[str, float]:
    cmd = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab_file)]
    cmd += [arg for d in duts for arg in ("--dut", d)]
    cmd += ["-n", str(len(duts)), "--reports", str(reports)]
    if pattern:
        cmd += ["--scenario", pattern]
    cpu0, _ = _children_usage()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    wall = time.monotonic() - t0
    cpu1, rss = _children_usage()
    run_dir = (reports / "latest").resolve()
    journal = [
        json.loads(line)
        for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    teardown = [
        json.loads(p.read_text(encoding="utf-8")) for p in (run_dir / "teardown").glob("*.json")
    ]
    calls = [e["remote_calls"] for e in journal if e.get("remote_calls") is not None]
    return {
        "exit": proc.returncode,
        "wall_s": wall,
        "scenarios": len(journal),
        "passed": sum(e["outcome"] in ("passed", "observed") for e in journal),
        "reboots": sum(bool(e.get("rebooted")) for e in journal)
        + sum(bool(t.get("rebooted")) for t in teardown),
        "calls_per_scenario": statistics.median(calls) if calls else float("nan"),
        "cpu_s": cpu1 - cpu0,
        "max_rss_mib": rss / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", type=Path, default=ROOT / "testplans" / "nightly.yaml")
    ap.add_argument("--lab", type=Path, default=ROOT / "lab_config" / "virtual_pool.yaml")
    ap.add_argument("--duts", default="1,2,4", help="DUT counts, comma-separated")
    ap.add_argument("--scenario", default=None, help="only scenario ids matching this glob")
    ap.add_argument("--no-run", action="store_true", help="modelled figures only")
    args = ap.parse_args()
    counts = [int(x) for x in args.duts.split(",")]
    lab = load_lab(args.lab)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"plan {args.plan.name} on {args.lab.name}; cost model: {lab.cost_model.model_dump()}\n")
    print("## Reboots on the shipped plans\n")
    print("\n".join(shipped_reboots()) + "\n")
    print("## Modelled lab time (cost model)\n")
    print("\n".join(modelled(args.plan, lab, counts, args.scenario)) + "\n")
    if args.no_run:
        return 0
    scale = lab.virtual.time_scale if lab.virtual else 1.0
    print(f"## Measured on the virtual lab (time_scale {scale})\n")
    print(
        "| DUTs | scenarios | passed | exit | wall s | speed-up | reboots | remote ops / "
        "scenario (median) | CPU s (all processes) | peak RSS MiB (largest process) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    members = list(lab.duts)
    base = None
    with tempfile.TemporaryDirectory(prefix="lab-time-") as tmp:
        for n in counts:
            r = measured_run(args.plan, args.lab, members[:n], args.scenario, Path(tmp) / f"n{n}")
            base = base or r["wall_s"]
            print(
                f"| {n} | {r['scenarios']} | {r['passed']} | {r['exit']} | {r['wall_s']:.1f} | "
                f"{base / r['wall_s']:.2f}x | {r['reboots']} | {r['calls_per_scenario']:.0f} | "
                f"{r['cpu_s']:.1f} | {r['max_rss_mib']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
