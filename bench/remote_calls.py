"""Benchmark: HTTP requests, TCP connections and latency per PowerShell call over WinRM (NTLM with
message encryption on HTTP), pywinrm's Session.run_ps against the harness's reused WinRMShell,
both against the virtual lab's WinRM endpoint on 127.0.0.1. Prints figures; compare the ratio.

    python3 bench/remote_calls.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import winrm

from harness.remote.winrm_transport import WinRMSettings, WinRMShell
from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint

USER, PASSWORD = "bench", "Bench-Passw0rd!"
SCRIPT = "Write-Output 'x'"


def measure(n: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        WinRMEndpoint(
            BuiltinExecutor(hostname="DUT-01", user="lab\\bench"),
            USER,
            PASSWORD,
            https=False,
            allow_unencrypted=False,
            cert_dir=Path(tmp),
        ) as ep,
    ):
        session = winrm.Session(ep.url, (USER, PASSWORD), transport="ntlm")
        r0, c0 = ep.requests_total, ep.connections_total
        times = []
        for _ in range(n):
            t = time.perf_counter()
            session.run_ps(SCRIPT)
            times.append(time.perf_counter() - t)
        s_req, s_conn = (ep.requests_total - r0) / n, (ep.connections_total - c0) / n
        s_ms = statistics.median(times) * 1000

        with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD)) as sh:
            sh.run("hostname", timeout_s=10)  # authenticate and open the shell once
            r1, c1 = ep.requests_total, ep.connections_total
            times = []
            for _ in range(n):
                t = time.perf_counter()
                sh.run_powershell(SCRIPT, timeout_s=10)
                times.append(time.perf_counter() - t)
            w_req, w_conn = (ep.requests_total - r1) / n, (ep.connections_total - c1) / n
            w_ms = statistics.median(times) * 1000

    print(f"calls: {n} (NTLM + message encryption over HTTP, loopback)")
    print(
        f"pywinrm Session.run_ps: {s_req:.1f} HTTP requests, {s_conn:.1f} connections, {s_ms:.1f} ms per call (median)"
    )
    print(
        f"harness WinRMShell:     {w_req:.1f} HTTP requests, {w_conn:.1f} connections, {w_ms:.1f} ms per call (median)"
    )
    print(f"ratio: {s_ms / w_ms:.1f}x faster, {s_req / w_req:.1f}x fewer requests")


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
