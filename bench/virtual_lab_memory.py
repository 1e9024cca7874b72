"""Benchmark: resident memory of the virtual lab process, for the default 2-DUT lab and 4 DUTs.

The 4-DUT lab is `lab_config/virtual.yaml` with tb-01 and m2-01 copied as tb-02 and m2-02 (own
ports on switch-1 channels 3 and 4, keyboards keyboard-3 and keyboard-4), written to a temp
file with the package paths made absolute. Each lab is started as a child process
(`start_virtual_lab`); its VmRSS and VmHWM (peak) from /proc/PID/status are read after start and
after a few operations on every DUT (host facts, verifier and session state, a file written and
hashed, the device plugged, listed and unplugged). Prints figures, asserts nothing. Linux only.

    python3 bench/virtual_lab_memory.py
"""

from __future__ import annotations

import copy
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from harness.config.lab import load_lab
from harness.lab.connect import LabConnector
from harness.remote.deadline import Deadline
from harness.virtual_lab.launcher import start_virtual_lab
from harness.windows.actions import wait_for_device
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

ROOT = Path(__file__).resolve().parents[1]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
COPIES = {"tb-02": ("tb-01", 3, "keyboard-3"), "m2-02": ("m2-01", 4, "keyboard-4")}


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML without YAML 1.1's on/off/yes/no booleans (the lab files say `kdp: on`)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def four_dut_lab(path: Path) -> Path:
    """Write the 4-DUT lab to `path` and return it."""
    base = LAB_FILE.parent
    data: dict[str, Any] = yaml.load(LAB_FILE.read_text(encoding="utf-8"), _Yaml12Loader)
    for pkg in data["driver_packages"].values():
        pkg["path"] = str((base / pkg["path"]).resolve())
    virtual = data["virtual"]
    virtual["trusted_roots"] = [str((base / p).resolve()) for p in virtual["trusted_roots"]]
    for new, (old, channel, keyboard) in COPIES.items():
        dut = copy.deepcopy(data["duts"][old])
        for port in dut["ports"].values():
            port["channel"] = channel
        dut["session_control"]["keyboard"] = keyboard
        if "port" in dut["transport"]:
            dut["transport"]["port"] += 1
        data["duts"][new] = dut
        data["instruments"][keyboard] = copy.deepcopy(data["instruments"]["keyboard-1"])
        virtual["duts"][new] = copy.deepcopy(virtual["duts"][old])
        virtual["instruments"][keyboard] = {"kind": "hid-keyboard"}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in KiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def exercise(lab_path: Path, endpoints: Any) -> int:
    """A few operations on every DUT; the number of operations run."""
    lab = load_lab(lab_path)
    connector = LabConnector(lab, endpoints)
    catalog = OperationCatalog()
    count = 0
    switch = connector.switch("switch-1")
    try:
        for name, dut in lab.duts.items():
            port = next(iter(dut.ports.values()))
            hwid = lab.devices[port.device].hardware_id
            with connector.shell(name) as shell:
                host = WindowsHost(shell, name=name, catalog=catalog, default_timeout_s=30)
                host.host_facts()
                host.verifier_state()
                host.session_state()
                host.file_write("C:\\harness\\mem.bin", b"m" * 65536)
                host.file_hash("C:\\harness\\mem.bin")
                switch.connect(port.channel)
                wait_for_device(host, hwid, lambda ds: bool(ds), Deadline.after(15, "device"))
                switch.disconnect(port.channel)
                count += 7
    finally:
        switch.close()
    return count


def measure(label: str, lab_path: Path) -> None:
    started = time.perf_counter()
    with start_virtual_lab(lab_path) as running:
        up_s = time.perf_counter() - started
        after_start = memory_kib(running.pid)
        ops = exercise(lab_path, running.endpoints)
        after_ops = memory_kib(running.pid)
        duts = len(running.endpoints.duts)
    print(
        f"{label}: {duts} DUTs, up in {up_s:.1f} s; "
        f"after start VmRSS {after_start['VmRSS'] / 1024:.1f} MiB "
        f"(VmHWM {after_start['VmHWM'] / 1024:.1f} MiB); "
        f"after {ops} operations VmRSS {after_ops['VmRSS'] / 1024:.1f} MiB "
        f"(VmHWM {after_ops['VmHWM'] / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    measure("default lab ", LAB_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        measure("4-DUT lab   ", four_dut_lab(Path(tmp) / "virtual-4.yaml"))
