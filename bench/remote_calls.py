"""Benchmark: round trips, powershell.exe starts and time per Windows operation, per-call vs persistent.

Against the virtual lab (in this process, `lab_config/virtual.yaml`, time_scale 0.045): the
`dmaguard_get` and `session_state` operations through `WindowsHost` over WinRM (tb-01: NTLM + message encryption
over HTTP, pywinrm) and SSH (m2-01: paramiko), each in two modes:

- per-call: `persistent_powershell=False`, one `powershell.exe -EncodedCommand` per operation
  (WinRM Command + Receive + Signal; SSH channel open + exec + output/exit status);
- persistent: one powershell.exe per connection fed one framed line per operation
  (`harness/remote/ps_host.py`: WinRM Send + Receive; SSH one exchange on an open channel);

plus pywinrm's own `Session.run_ps` as the baseline. Figures per operation: WinRM HTTP requests
(authentication included) counted at the virtual server; SSH round trips from the server's
counts: 3 per exec (CHANNEL_OPEN -> confirmation, exec request -> success, output -> exit
status) and 1 per framed request; powershell.exe starts counted by the simulated DUT, which
charges each start `POWERSHELL_START_S` (0.5 s, an estimate) x time_scale; median time.
"cold" is the first operation on a new connection (TCP, authentication, WinRM shell, host loop),
"warm" the median/mean of the next N. Each operation also takes its own simulated duration.

PSRP (pypsrp) is not measured: the virtual lab speaks WS-Man shells, not PSRP. From pypsrp 0.9.1
(`pypsrp/powershell.py`): `PowerShell.invoke()` = `begin_invoke()`, which sends the
CreatePipeline message as the first fragment of a WSMan Command (further fragments by Send),
then `end_invoke()`, which Receives until the pipeline leaves the Running state: at least 2
requests per invocation on an open RunspacePool, i.e. the same as the persistent host here;
opening the pool costs Create + Receive(s) and closing it Delete (3 + 2N measured for N invokes,
docs in the protocol notes the project was built from), and pypsrp's high-level `Client.execute_ps`
opens a new pool per call (maintainer, jborean93/pypsrp#106). PSRP runs in one wsmprovhost.exe
per pool, also no powershell.exe per call. The stdin loop was chosen because it (1) works the
same over SSH, where Windows PowerShell 5.1 has no PSRP (that needs PowerShell 7's `-sshs`
subsystem on every DUT), (2) keeps the text stdout + exit code contract that the operation
scripts, `parse_result` and the per-call fallback share, (3) is served by the virtual lab's
existing WinRM shell endpoint (a PSRP endpoint would need a psrpcore-based WSMan shim), and
(4) adds no runtime dependency. It costs the same 2 requests per warm operation.

    python3 bench/remote_calls.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import winrm

from harness.config.lab import load_lab
from harness.lab.connect import LabConnector
from harness.remote.ssh_transport import SshShell
from harness.remote.winrm_transport import WinRMShell
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.virtual_lab.windows.machine import WindowsMachine
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

ROOT = Path(__file__).resolve().parents[1]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
WINRM_DUT, SSH_DUT = "tb-01", "m2-01"
#: dmaguard_get fits a cmd.exe command line as -EncodedCommand; session_state (Add-Type C#) does
#: not, so per-call mode feeds it through stdin (`-Command -`: one more Send) and run_ps fails.
OPERATIONS = ("dmaguard_get", "session_state")


@dataclass
class Row:
    label: str
    cold_rt: float
    warm_rt: float
    cold_starts: float
    warm_starts: float
    cold_ms: float
    warm_ms: float


class Counters:
    """The virtual DUT's counters: HTTP requests, SSH execs, framed requests, powershell starts."""

    def __init__(self, rt: VirtualLabRuntime, dut: str) -> None:
        self.node = rt.nodes[dut]
        machine = self.node.machine
        assert isinstance(machine, WindowsMachine)
        self.executor = machine.executor

    def round_trips(self, ssh: bool) -> int:
        n = self.node
        if ssh:
            return 3 * n.ssh.execs_total + self.executor.host_requests_total
        return n.winrm_http.requests_total + n.winrm_https.requests_total

    def starts(self) -> int:
        return self.executor.powershell_starts


def measure_shell(
    rt: VirtualLabRuntime, connector: LabConnector, dut: str, persistent: bool, op: str, n: int
) -> Row:
    c = Counters(rt, dut)
    ssh = dut == SSH_DUT
    catalog = OperationCatalog()
    shell: WinRMShell | SshShell = connector.shell(dut)
    shell.persistent_powershell = persistent
    with shell:
        host = WindowsHost(shell, name=dut, catalog=catalog, default_timeout_s=30)
        r0, s0, t0 = c.round_trips(ssh), c.starts(), time.perf_counter()
        host.call(op, {})
        cold_ms = (time.perf_counter() - t0) * 1000
        cold_rt, cold_starts = c.round_trips(ssh) - r0, c.starts() - s0
        r1, s1, times = c.round_trips(ssh), c.starts(), []
        for _ in range(n):
            t = time.perf_counter()
            host.call(op, {})
            times.append(time.perf_counter() - t)
        warm_rt, warm_starts = (c.round_trips(ssh) - r1) / n, (c.starts() - s1) / n
    mode = "persistent host" if persistent else "per-call"
    return Row(
        f"{'SSH' if ssh else 'WinRM'} {mode}",
        cold_rt,
        warm_rt,
        cold_starts,
        warm_starts,
        cold_ms,
        statistics.median(times) * 1000,
    )


def measure_run_ps(rt: VirtualLabRuntime, connector: LabConnector, op: str, n: int) -> Row:
    c = Counters(rt, WINRM_DUT)
    ep = rt.endpoints().duts[WINRM_DUT].winrm
    user, password = connector.credentials(WINRM_DUT)
    script = OperationCatalog().build_invocation(op, {})
    session = winrm.Session(ep.http_url, (user, password), transport="ntlm")
    times, r0, s0 = [], c.round_trips(False), c.starts()
    for _ in range(n):
        t = time.perf_counter()
        ok = session.run_ps(script).status_code == 0
        times.append(time.perf_counter() - t)
    rt_per, starts = (c.round_trips(False) - r0) / n, (c.starts() - s0) / n
    ms = statistics.median(times) * 1000
    label = "WinRM pywinrm run_ps" if ok else "WinRM run_ps (FAILS)"
    return Row(label, rt_per, rt_per, starts, starts, ms, ms)


def measure(n: int) -> None:
    lab = load_lab(LAB_FILE)
    assert lab.virtual is not None
    with tempfile.TemporaryDirectory() as tmp:
        rt = VirtualLabRuntime(lab, workdir=Path(tmp)).start()
        try:
            connector = LabConnector(lab, rt.endpoints())
            tables: dict[str, list[Row]] = {}
            for op in OPERATIONS:
                rows = tables[op] = [measure_run_ps(rt, connector, op, n)]
                for dut in (WINRM_DUT, SSH_DUT):
                    for persistent in (False, True):
                        rows.append(measure_shell(rt, connector, dut, persistent, op, n))
        finally:
            rt.stop()
    assert lab.virtual is not None
    scale = lab.virtual.time_scale
    print(
        f"{n} warm calls per row; virtual lab time_scale {scale}: powershell.exe start "
        f"0.5 s real-world -> {0.5 * scale * 1000:.1f} ms"
    )
    print(
        "round trips: WinRM = HTTP requests incl. NTLM; SSH = 3 per exec + 1 per framed line "
        "(cold SSH excludes the TCP/key-exchange/auth of the connection)"
    )
    for op, rows in tables.items():
        print(
            f"\n{op:24} {'round trips':>17} {'powershell.exe':>17} {'ms per operation':>21}\n"
            f"{'':24} {'cold':>8} {'warm':>8} {'cold':>8} {'warm':>8} {'cold':>10} {'warm':>10}"
        )
        for r in rows:
            print(
                f"{r.label:24} {r.cold_rt:8.1f} {r.warm_rt:8.1f} {r.cold_starts:8.1f} "
                f"{r.warm_starts:8.2f} {r.cold_ms:10.1f} {r.warm_ms:10.1f}"
            )


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
