"""What the harness's pytest plugin costs every pytest run in an environment where it is
installed: a temporary project with one trivial test, run with the plugin (as installed, idle)
and without it (`-p no:dma_lab_harness`), alternating, in one session so both see the same
machine load. Prints wall time (median and spread), peak RSS and modules imported.

    python3 bench/plugin_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = """
import json, os, sys

def test_trivial():
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(sorted(sys.modules), f)
"""
MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(rc, wall, rss)
"""


def once(project: Path, extra: list[str]) -> tuple[float, int, int]:
    out = project / "modules.json"
    env = dict(os.environ, MODULES_OUT=str(out))
    env = {k: v for k, v in env.items() if not k.startswith("DMA_HARNESS_")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    r = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rc, wall, rss = r.stdout.split()
    if rc != "0":
        raise SystemExit(f"pytest failed ({rc}) with {extra}")
    return float(wall), int(rss), len(json.loads(out.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plugin-startup-") as tmp:
        project = Path(tmp)
        (project / "test_other.py").write_text(TEST)
        variants = {
            "with plugin (idle)": [],
            "without (-p no:dma_lab_harness)": ["-p", "no:dma_lab_harness"],
        }
        samples: dict[str, list[tuple[float, int, int]]] = {k: [] for k in variants}
        for extra in variants.values():
            once(project, extra)  # warm the file cache
        t0 = time.perf_counter()
        for _ in range(args.runs):
            for name, extra in variants.items():
                samples[name].append(once(project, extra))
        print(
            f"pytest start + 1 trivial test, {args.runs} runs each, alternating "
            f"({time.perf_counter() - t0:.0f} s), python {sys.version.split()[0]}"
        )
        for name, rows in samples.items():
            walls = sorted(r[0] for r in rows)
            med = statistics.median(walls)
            rss = statistics.median(r[1] for r in rows) / 1024
            mods = rows[-1][2]
            print(
                f"  {name:34s} wall median {med * 1000:6.0f} ms (p10 {walls[len(walls) // 10] * 1000:.0f}, "
                f"p90 {walls[(len(walls) * 9) // 10] * 1000:.0f})  peak RSS {rss:5.1f} MB  modules {mods}"
            )
        (w1, r1, m1), (w2, r2, m2) = (
            (
                statistics.median(x[0] for x in rows),
                statistics.median(x[1] for x in rows) / 1024,
                rows[-1][2],
            )
            for rows in samples.values()
        )
        print(
            f"  plugin cost: {1000 * (w1 - w2):+.0f} ms ({w1 / w2:.2f}x), {r1 - r2:+.1f} MB, {m1 - m2:+d} modules"
        )


if __name__ == "__main__":
    main()
