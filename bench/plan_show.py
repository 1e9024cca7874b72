"""Benchmark: `harness plan show --json` on a plan that expands to 10,000 scenarios.

    python bench/plan_show.py

Generates, in a temporary directory, a virtual lab of 50 DUTs (one external port each, the
shipped dmalab_nvme INFs) and a plan of 50 DUTs x 5 packages x (2 kdp x 4 dmaguard x 2 verifier
x 3 sessions - 8 excluded: kdp off with no-user) = 10,000 scenarios, then times the CLI end to
end as a subprocess (median of 3) and the in-process load, expansion and oracle.
Not a test: it prints figures.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUTS = 50
PACKAGES = ["nvme-inf0", "nvme-inf1", "nvme-inf2", "nvme-noinf", "nvme-stack"]
INFS = {
    "nvme-inf0": "dmalab_nvme_inf0.inf",
    "nvme-inf1": "dmalab_nvme_inf1.inf",
    "nvme-inf2": "dmalab_nvme_inf2.inf",
    "nvme-noinf": "dmalab_nvme_noinf.inf",
    "nvme-stack": "dmalab_nvme_stack.inf",
}


def write_lab(directory: Path) -> Path:
    shutil.copytree(ROOT / "lab_config" / "packages", directory / "packages")
    duts, vduts = [], []
    for i in range(DUTS):
        name = f"tb-{i:02d}"
        duts.append(
            f"  {name}:\n    address: 127.0.0.1\n    transport: {{kind: winrm, scheme: http}}\n"
            f"    os_build: 22631\n    edition: Enterprise\n"
            f"    kdp: {{declared: on, firmware_control: lenovo-wmi}}\n"
            f"    ports:\n      tb4: {{kind: external, switch: switch-1, channel: {i + 1}, device: nvme-tb}}\n"
            f"    session_control: {{lock: scheduled-task, unlock: hid-keyboard, keyboard: kbd}}\n"
        )
        vduts.append(f"    {name}: {{build: 22631, edition: Enterprise, firmware: lenovo-wmi}}\n")
    packages = "".join(
        f"  {n}:\n    path: packages/{f}\n    expected_signer: Microsoft Windows Hardware Compatibility Publisher\n"
        for n, f in INFS.items()
    )
    text = (
        "duts:\n"
        + "".join(duts)
        + "instruments:\n  switch-1: {kind: scpi-switch, resource: virtual}\n"
        + "  kbd: {kind: hid-keyboard, resource: virtual}\n"
        + "devices:\n  nvme-tb:\n    hardware_id: PCI\\VEN_144D&DEV_A808*\n    class: SCSIAdapter\n"
        + "    dma_probe: {kind: storage, volume_label: TB}\n"
        + "driver_packages:\n"
        + packages
        + "virtual:\n  duts:\n"
        + "".join(vduts)
        + "  instruments:\n    switch-1: {kind: scpi-switch}\n    kbd: {kind: hid-keyboard}\n"
    )
    path = directory / "lab.yaml"
    path.write_text(text)
    return path


def write_plan(directory: Path) -> Path:
    path = directory / "plan.yaml"
    path.write_text(
        "name: bench\npurpose: nightly\nduts: {capabilities: [external-port]}\n"
        "devices: [nvme-tb]\n"
        f"driver_packages: [{', '.join(PACKAGES)}]\n"
        "matrix:\n  kdp: [on, off]\n  dmaguard: [absent, 0, 1, 2]\n  verifier_dma: [on, off]\n"
        "  session: [no-user, locked, unlocked]\n"
        "exclude:\n  - kdp: off\n    session: no-user\n",
    )
    return path


def main() -> None:
    from harness.cli.plan_cmd import expectations
    from harness.config.lab import load_lab
    from harness.config.plan import load_plan
    from harness.config.scenarios import expand
    from harness.lab.schedule import package_drivers, schedule

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        lab_path, plan_path = write_lab(directory), write_plan(directory)

        start = time.perf_counter()
        lab, plan = load_lab(lab_path), load_plan(plan_path)
        loaded = time.perf_counter()
        scenarios = expand(plan, lab)
        expanded = time.perf_counter()
        expectations(scenarios)
        judged = time.perf_counter()
        schedule(scenarios, lab, package_drivers(lab, scenarios))
        scheduled = time.perf_counter()
        print(f"scenarios: {len(scenarios)}")
        print(
            f"in-process: load {loaded - start:.3f}s, expand {expanded - loaded:.3f}s, "
            f"oracle {judged - expanded:.3f}s, schedule {scheduled - judged:.3f}s"
        )

        exe = shutil.which("harness") or sys.exit("the harness script is not installed")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [exe, "plan", "show", str(plan_path), "--lab", str(lab_path), "--json"],
                capture_output=True,
                check=True,
            )
            times.append(time.perf_counter() - t0)
        print(
            f"harness plan show --json: median {statistics.median(times):.3f}s "
            f"of {[round(t, 3) for t in times]} ({len(proc.stdout) / 1e6:.1f} MB of JSON)"
        )


if __name__ == "__main__":
    main()
