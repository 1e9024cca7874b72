"""`harness lab doctor`: is every DUT and instrument of a lab ready for a run?

For each DUT: reachable (TCP), authenticated with its host key / certificate trusted, build and
Kernel DMA Protection as the lab declares, Driver Verifier state (a pending reboot is a warning),
every shipped operation script parses on the host (PowerShell's own parser on a real host), and
each port's device is seen when its switch channel is closed (the channel is put back as it was).
For each instrument: it identifies. The result is one row per check; any FAIL makes the command
exit non-zero. Nothing here changes a DUT's configuration.

>>> checks = run_doctor(lab, LabConnector(lab, endpoints))        # doctest: +SKIP
>>> print(render(checks))                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import enum
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.config.lab import Lab
from harness.domain.conditions import OnOff
from harness.errors import HarnessError
from harness.instruments.base import HotPlugSwitch
from harness.remote.connect import LabConnector
from harness.remote.deadline import Deadline
from harness.remote.ssh_transport import SshShell
from harness.remote.winrm_transport import WinRMShell
from harness.windows.host import WaitTimeout, WindowsHost
from harness.windows.ops import OperationCatalog


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    target: str
    name: str
    status: Status
    detail: str


class _Rows:
    def __init__(self, target: str) -> None:
        self.target = target
        self.rows: list[Check] = []

    def add(self, name: str, status: Status, detail: str) -> None:
        self.rows.append(Check(self.target, name, status, detail))


def _address(shell: WinRMShell | SshShell) -> tuple[str, int]:
    if isinstance(shell, WinRMShell):
        url = urlsplit(shell.settings.url)
        return url.hostname or "", url.port or (5986 if url.scheme == "https" else 5985)
    return shell.settings.host, shell.settings.port


def _reachable(host: str, port: int, timeout_s: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


def _trust_problem(message: str) -> str:
    low = message.lower()
    if "certificate" in low or "ssl" in low:
        return "certificate not trusted"
    if "host key" in low or "known_hosts" in low:
        return "host key not trusted"
    if "401" in low or "auth" in low or "credentials" in low:
        return "authentication failed"
    return "failed"


def check_dut(
    lab: Lab, connector: LabConnector, name: str, catalog: OperationCatalog, timeout_s: float
) -> list[Check]:
    rows = _Rows(name)
    dut = lab.duts[name]
    try:
        shell = connector.shell(name)
    except HarnessError as exc:
        rows.add("connect", Status.FAIL, str(exc))
        return rows.rows
    with contextlib.closing(shell):
        host_port = _address(shell)
        problem = _reachable(*host_port, timeout_s)
        if problem:
            rows.add("reachable", Status.FAIL, problem)
            return rows.rows
        rows.add("reachable", Status.OK, f"{host_port[0]}:{host_port[1]}")
        try:
            hostname = shell.run("hostname", timeout_s=timeout_s).stdout.strip()
        except HarnessError as exc:
            rows.add(
                "authenticated, key/cert trusted", Status.FAIL, f"{_trust_problem(str(exc))}: {exc}"
            )
            return rows.rows
        rows.add("authenticated, key/cert trusted", Status.OK, f"hostname {hostname}")
        host = WindowsHost(shell, name=name, catalog=catalog, default_timeout_s=timeout_s)
        for check in (_facts, _verifier, _parse, _ports):
            try:
                check(rows, lab, connector, host, name, catalog, timeout_s)
            except HarnessError as exc:
                rows.add(check.__name__.strip("_"), Status.FAIL, str(exc))
    del dut
    return rows.rows


def _facts(
    rows: _Rows,
    lab: Lab,
    _c: LabConnector,
    host: WindowsHost,
    name: str,
    _cat: OperationCatalog,
    _t: float,
) -> None:
    dut = lab.duts[name]
    facts = host.host_facts()
    build_ok = facts.build == dut.os_build
    rows.add(
        "build as declared",
        Status.OK if build_ok else Status.FAIL,
        f"{facts.product_name} build {facts.build}.{facts.ubr}"
        + ("" if build_ok else f", lab says {dut.os_build}"),
    )
    declared = dut.kdp.declared is OnOff.ON
    if facts.kdp.enabled is None:
        rows.add("KDP as declared", Status.WARN, "Kernel DMA Protection state unknown")
    else:
        ok = facts.kdp.enabled == declared
        rows.add(
            "KDP as declared",
            Status.OK if ok else Status.FAIL,
            f"Kernel DMA Protection {'on' if facts.kdp.enabled else 'off'} "
            f"({facts.kdp.source.value})" + ("" if ok else f", lab says {dut.kdp.declared.value}"),
        )


def _verifier(
    rows: _Rows,
    _lab: Lab,
    _c: LabConnector,
    host: WindowsHost,
    _n: str,
    _cat: OperationCatalog,
    _t: float,
) -> None:
    state = host.verifier_state()
    active = f"active flags {state.active.flags or 0:#x} {list(state.active.drivers)}"
    if state.reboot_pending:
        rows.add(
            "Driver Verifier",
            Status.WARN,
            f"{active}; pending at next boot: flags "
            f"{state.pending.flags or 0:#x} {list(state.pending.drivers)}",
        )
    else:
        rows.add("Driver Verifier", Status.OK, active)


def _parse(
    rows: _Rows,
    _lab: Lab,
    _c: LabConnector,
    host: WindowsHost,
    _n: str,
    catalog: OperationCatalog,
    _t: float,
) -> None:
    scripts = {n: catalog.script_text(n) for n in catalog.operation_names()}
    result = host.parse_check(scripts)
    bad = [
        f"{n}:{i.line}:{i.column}: {i.message}"
        for n, issues in result.results.items()
        for i in issues
    ]
    rows.add(
        "operations parse on host",
        Status.FAIL if bad else Status.OK,
        "; ".join(bad[:3]) if bad else f"{len(scripts)} scripts",
    )


@contextlib.contextmanager
def _closed_channel(switch: HotPlugSwitch, channel: int) -> Iterator[None]:
    was = switch.state(channel)
    if not was:
        switch.connect(channel)
    try:
        yield
    finally:
        if not was:
            switch.disconnect(channel)


def _ports(
    rows: _Rows,
    lab: Lab,
    connector: LabConnector,
    host: WindowsHost,
    name: str,
    _cat: OperationCatalog,
    timeout_s: float,
) -> None:
    for port_name, port in lab.duts[name].ports.items():
        device = lab.devices[port.device]
        check = f"port {port_name}: {port.device} seen"
        switch = connector.switch(port.switch)
        try:
            with _closed_channel(switch, port.channel):
                found = host.wait_for_device(
                    device.hardware_id,
                    lambda devs: bool(devs),
                    Deadline.after(timeout_s, f"{port.device} on {name}"),
                )
            d = found[0]
            rows.add(
                check,
                Status.OK,
                f"{d.instance_id} status {d.status}"
                + (f", problem {d.problem_code}" if d.problem_code else ""),
            )
        except WaitTimeout:
            rows.add(
                check,
                Status.FAIL,
                f"no device {device.hardware_id} within {timeout_s:g} s "
                f"of closing {port.switch} channel {port.channel}",
            )
        finally:
            switch.close()


def check_instrument(connector: LabConnector, name: str) -> list[Check]:
    rows = _Rows(name)
    try:
        inst = connector.instrument(name)
    except HarnessError as exc:
        rows.add("identifies", Status.FAIL, str(exc))
        return rows.rows
    try:
        ident = getattr(inst, "identify", None)
        text = ident() if ident else "opened"
        rows.add("identifies", Status.OK, text)
    except HarnessError as exc:
        rows.add("identifies", Status.FAIL, str(exc))
    finally:
        inst.close()
    return rows.rows


def run_doctor(lab: Lab, connector: LabConnector, *, timeout_s: float = 30.0) -> list[Check]:
    catalog = OperationCatalog()
    checks: list[Check] = []
    for name in lab.instruments:
        checks += check_instrument(connector, name)
    for name in lab.duts:
        checks += check_dut(lab, connector, name, catalog, timeout_s)
    return checks


def render(checks: list[Check]) -> str:
    widths = [
        max([len(h)] + [len(getattr(c, f)) for c in checks])
        for h, f in (("TARGET", "target"), ("CHECK", "name"))
    ]
    lines = [f"{'TARGET':<{widths[0]}}  {'CHECK':<{widths[1]}}  STATUS  DETAIL"]
    for c in checks:
        lines.append(
            f"{c.target:<{widths[0]}}  {c.name:<{widths[1]}}  {c.status.value:<6}  {c.detail}"
        )
    return "\n".join(lines)


def broken(checks: list[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)
