"""Benchmark: the Windows operations of `WindowsHost` through the virtual lab, per transport.

For each operation (host_facts, pnp_devices, verifier_state, session_state, file_hash) it prints
the HTTP requests and TCP connections per call and the median latency over N calls of

- the harness's reused WinRM shell (`WindowsHost` over `LabConnector.shell("tb-01")`),
- pywinrm's `Session.run_ps` with the same operation script (`OperationCatalog.build_invocation`),
- SSH (`WindowsHost` over `LabConnector.shell("m2-01")`): latency and SSH execs per call.

The lab runs in this process (`VirtualLabRuntime`) so the endpoint counters can be read. Each
simulated operation takes its real-world duration times the lab's `time_scale`; nothing is
subtracted. Prints figures, asserts nothing.

    python3 bench/operations.py [N]
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import winrm

from harness.config.lab import load_lab
from harness.lab.connect import LabConnector
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

ROOT = Path(__file__).resolve().parents[1]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
WINRM_DUT, SSH_DUT = "tb-01", "m2-01"
FILE = "C:\\harness\\bench.bin"
CMD_LIMIT = 8191  # characters of a cmd.exe command line
HWID = {"tb-01": "PCI\\VEN_144D&DEV_A808*", "m2-01": "PCI\\VEN_144D&DEV_A80A*"}


def _run_ps_command_line(script: str) -> str:
    """The command line pywinrm's `run_ps` sends: `powershell -encodedcommand <UTF-16LE b64>`."""
    encoded = base64.b64encode(script.encode("utf_16_le")).decode("ascii")
    return f"powershell -encodedcommand {encoded}"


def operations(dut: str) -> dict[str, dict[str, Any]]:
    """Operation name -> parameters (what `WindowsHost` sends for the same call)."""
    return {
        "host_facts": {},
        "pnp_devices": {"hardware_id": HWID[dut], "present_only": True},
        "verifier_state": {},
        "session_state": {},
        "file_hash": {"path": FILE},
    }


def host_call(host: WindowsHost, name: str, params: dict[str, Any]) -> Callable[[], object]:
    calls: dict[str, Callable[[], object]] = {
        "host_facts": host.host_facts,
        "pnp_devices": lambda: host.pnp_devices(params.get("hardware_id", "")),
        "verifier_state": host.verifier_state,
        "session_state": host.session_state,
        "file_hash": lambda: host.file_hash(params.get("path", "")),
    }
    return calls[name]


def timed(fn: Callable[[], object], n: int) -> float:
    """Median milliseconds of `n` calls of `fn`."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(n: int) -> None:
    lab = load_lab(LAB_FILE)
    catalog = OperationCatalog()
    assert lab.virtual is not None
    with tempfile.TemporaryDirectory() as tmp:
        rt = VirtualLabRuntime(lab, workdir=Path(tmp)).start()
        try:
            connector = LabConnector(lab, rt.endpoints())
            rows: dict[str, dict[str, float]] = {}

            # (a) the reused WinRM shell
            http = rt.nodes[WINRM_DUT].winrm_http
            with connector.shell(WINRM_DUT) as shell:
                host = WindowsHost(shell, name=WINRM_DUT, catalog=catalog, default_timeout_s=30)
                host.file_write(FILE, b"x" * 4096)  # authenticate, open the shell, seed the file
                for name, params in operations(WINRM_DUT).items():
                    r0, c0 = http.requests_total, http.connections_total
                    ms = timed(host_call(host, name, params), n)
                    rows[name] = {
                        "shell_req": (http.requests_total - r0) / n,
                        "shell_conn": (http.connections_total - c0) / n,
                        "shell_ms": ms,
                    }

            # (b) pywinrm Session.run_ps with the same script text
            ep = rt.endpoints().duts[WINRM_DUT].winrm
            session = winrm.Session(ep.http_url, auth=(ep.username, ep.password), transport="ntlm")
            for name, params in operations(WINRM_DUT).items():
                script = catalog.build_invocation(name, params)
                r = session.run_ps(script)
                if r.status_code != 0:  # e.g. cmd.exe's 8191-character command line limit
                    rows[name]["runps_error"] = (
                        f"exit {r.status_code}: {r.std_err.decode().strip()}"
                    )
                    continue
                r0, c0 = http.requests_total, http.connections_total
                ms = timed(lambda script=script: session.run_ps(script), n)
                rows[name].update(
                    runps_req=(http.requests_total - r0) / n,
                    runps_conn=(http.connections_total - c0) / n,
                    runps_ms=ms,
                )
            rows_len = {
                name: len(_run_ps_command_line(catalog.build_invocation(name, params)))
                for name, params in operations(WINRM_DUT).items()
            }

            # (c) SSH: WindowsHost over the SSH shell
            ssh_ep = rt.nodes[SSH_DUT].ssh
            with connector.shell(SSH_DUT) as shell:
                host = WindowsHost(shell, name=SSH_DUT, catalog=catalog, default_timeout_s=30)
                host.file_write(FILE, b"x" * 4096)
                for name, params in operations(SSH_DUT).items():
                    e0 = ssh_ep.execs_total
                    ms = timed(host_call(host, name, params), n)
                    rows[name].update(ssh_execs=(ssh_ep.execs_total - e0) / n, ssh_ms=ms)
                ssh_open = ssh_ep.connections_open
        finally:
            rt.stop()

    print(f"calls per operation: {n}; lab time_scale: {lab.virtual.time_scale} (not subtracted)")
    print("WinRM: NTLM + message encryption over HTTP on loopback; SSH: paramiko, password auth")
    head = (
        f"{'operation':<15} | {'reused shell':^22} | {'pywinrm run_ps':^22} | {'ssh':^14} | "
        f"{'run_ps/shell':^12}"
    )
    sub = f"{'':<15} | {'req':>5} {'conn':>5} {'ms':>10} | {'req':>5} {'conn':>5} {'ms':>10} | "
    sub += f"{'execs':>5} {'ms':>8} | {'ms':>5} {'req':>6}"
    print(head)
    print(sub)
    print("-" * len(sub))
    for name, r in rows.items():
        shell = f"{r['shell_req']:>5.1f} {r['shell_conn']:>5.1f} {r['shell_ms']:>10.1f}"
        ssh = f"{r['ssh_execs']:>5.1f} {r['ssh_ms']:>8.1f}"
        if "runps_ms" in r:
            runps = f"{r['runps_req']:>5.1f} {r['runps_conn']:>5.1f} {r['runps_ms']:>10.1f}"
            ratio = (
                f"{r['runps_ms'] / r['shell_ms']:>4.1f}x  {r['runps_req'] / r['shell_req']:>4.1f}x"
            )
        else:
            runps, ratio = f"{'fails (see below)':>22}", f"{'n/a':>12}"
        print(f"{name:<15} | {shell} | {runps} | {ssh} | {ratio}")
    for name, r in rows.items():
        if "runps_error" in r:
            print(
                f"run_ps {name}: {r['runps_error']} "
                f"(command line {rows_len[name]} characters; cmd.exe allows {CMD_LIMIT})"
            )
    print(f"ssh connections open at the end of the SSH run: {ssh_open} (one reused)")


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
