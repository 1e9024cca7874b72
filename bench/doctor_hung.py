"""`harness lab doctor` against a lab whose DUTs accept connections and never answer.

Starts N TCP listeners on 127.0.0.1 that accept and stay silent (hung WinRM listeners), writes a
lab file with one WinRM DUT on each, and times `python -m harness lab doctor LAB --timeout T`
run from a checkout (default: this one). Doctor checks every DUT at once, so the wall time
should stay near one timeout, not N.

    python3 bench/doctor_hung.py [--duts 4] [--timeout 5] [--checkout PATH]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LAB = """
  dut-{i}:
    address: 127.0.0.1
    transport: {{kind: winrm, scheme: http, port: {port}, auth: basic, allow_unencrypted: true}}
    credentials: {{username: lab, password: "env:BENCH_DOCTOR_PW"}}
    os_build: 22631
    edition: Enterprise
    kdp: {{declared: on}}
    ports: {{p: {{kind: external, switch: sw, channel: {ch}, device: dev}}}}
    session_control: {{lock: scheduled-task, unlock: none}}
    baseline: {{kdp: on, dmaguard: absent, verifier_dma: off, test_signing: off}}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duts", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    args = ap.parse_args()
    held: list[socket.socket] = []
    listeners = []
    for _ in range(args.duts + 1):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        listeners.append(s)

    def accept(s: socket.socket) -> None:
        while True:
            try:
                held.append(s.accept()[0])
            except OSError:
                return

    for s in listeners:
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    ports = [s.getsockname()[1] for s in listeners]
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(tmp) / "lab.yaml"
        duts = "".join(LAB.format(i=i, port=p, ch=i + 1) for i, p in enumerate(ports[1:]))
        lab.write_text(
            "duts:" + duts + "devices:\n  dev: {hardware_id: 'PCI\\\\VEN_1234*', class: X}\n"
            f"instruments:\n  sw:\n    kind: scpi-switch\n"
            f"    resource: TCPIP0::127.0.0.1::{ports[0]}::SOCKET\n    timeout_s: {args.timeout}\n"
        )
        env = {**os.environ, "BENCH_DOCTOR_PW": "x"}
        started = time.monotonic()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "lab",
                "doctor",
                str(lab),
                "--timeout",
                str(args.timeout),
            ],
            cwd=args.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        took = time.monotonic() - started
    print(f"checkout {args.checkout}")
    print(
        f"{args.duts} hung DUTs + 1 hung switch, --timeout {args.timeout:g}: exit {r.returncode}, "
        f"wall {took:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
