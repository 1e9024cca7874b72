"""`harness lab doctor`: is every DUT and instrument of a lab ready for a run?

For each DUT: reachable (TCP), authenticated with its host key / certificate trusted, build and
Kernel DMA Protection as the lab declares, Driver Verifier state (a pending reboot is a warning),
every shipped operation script parses on the host (PowerShell's own parser on a real host), and
each port's device is seen when its switch channel is closed (the channel is put back as it was).
For each instrument: it identifies. The result is one row per check; any FAIL makes the command
exit non-zero. Nothing here changes a DUT's configuration.

Every DUT and instrument is checked at the same time (one thread each), so a lab whose listeners
never answer costs one timeout, not one per DUT; an instrument is used by one check at a time (a
lock per instrument), and the rows come out in the lab file's order. `deep=True` adds the
readiness checks of `harness.doctor_deep` (every read-only operation, and each assumption the
harness makes about a real Windows host). Each DUT's calls are recorded in a `Transcript` (secrets
redacted), which `harness.doctor_bundle` writes into a support bundle.

>>> checks = run_doctor(lab, LabConnector(lab, endpoints))        # doctest: +SKIP
>>> print(render(checks))                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness.config.lab import Lab
from harness.domain.conditions import OnOff
from harness.errors import HarnessError
from harness.instruments.base import HotPlugSwitch
from harness.lab.connect import LabConnector
from harness.remote.deadline import Deadline
from harness.remote.ssh_transport import SshShell
from harness.remote.transcript import Transcript
from harness.remote.winrm_transport import WinRMShell
from harness.windows.actions import wait_for_device
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


@dataclass
class DoctorContext:
    """What the checks of one doctor run share: the lab, its connector, the per-check budget,
    one lock per instrument, and each DUT's transcript."""

    lab: Lab
    connector: LabConnector
    timeout_s: float = 30.0
    catalog: OperationCatalog = field(default_factory=OperationCatalog)
    deep: bool = False
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    transcripts: dict[str, Transcript] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.lab.instruments:
            self.locks.setdefault(name, threading.Lock())

    def instrument_lock(self, name: str) -> threading.Lock:
        return self.locks.setdefault(name, threading.Lock())


def check_dut(ctx: DoctorContext, name: str) -> list[Check]:
    lab, connector, catalog, timeout_s = ctx.lab, ctx.connector, ctx.catalog, ctx.timeout_s
    rows = _Rows(name)
    transcript = ctx.transcripts.setdefault(name, Transcript())
    try:
        shell = connector.shell(name, transcript=transcript)
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
        for check in (_facts, _verifier, _parse):
            try:
                check(rows, lab, connector, host, name, catalog, timeout_s)
            except HarnessError as exc:
                rows.add(check.__name__.strip("_"), Status.FAIL, str(exc))
        try:
            _ports(rows, ctx, host, name)
        except HarnessError as exc:
            rows.add("ports", Status.FAIL, str(exc))
        if ctx.deep:
            from harness.doctor_deep import deep_checks

            for check_name, status, detail in deep_checks(lab, shell, host, name, timeout_s):
                rows.add(check_name, Status(status), detail)
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


def _ports(rows: _Rows, ctx: DoctorContext, host: WindowsHost, name: str) -> None:
    for port_name, port in ctx.lab.duts[name].ports.items():
        # one check at a time per switch: the channel is closed, watched and put back as a unit
        with ctx.instrument_lock(port.switch):
            _port(rows, ctx, host, name, port_name)


def _port(rows: _Rows, ctx: DoctorContext, host: WindowsHost, name: str, port_name: str) -> None:
    timeout_s = ctx.timeout_s
    port = ctx.lab.duts[name].ports[port_name]
    device = ctx.lab.devices[port.device]
    check = f"port {port_name}: {port.device} seen"
    switch = ctx.connector.switch(port.switch)
    try:
        with _closed_channel(switch, port.channel):
            found = wait_for_device(
                host,
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


def check_instrument(ctx: DoctorContext, name: str) -> list[Check]:
    with ctx.instrument_lock(name):
        return _check_instrument(ctx.connector, name)


def _check_instrument(connector: LabConnector, name: str) -> list[Check]:
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


def run_doctor(
    lab: Lab,
    connector: LabConnector,
    *,
    timeout_s: float = 30.0,
    deep: bool = False,
    transcripts: dict[str, Transcript] | None = None,
) -> list[Check]:
    """Every instrument's and DUT's checks, run concurrently; rows in the lab file's order.

    `transcripts` (DUT name -> Transcript) receives each DUT's calls when given.
    """
    ctx = DoctorContext(lab, connector, timeout_s=timeout_s, deep=deep)
    if transcripts is not None:
        ctx.transcripts = transcripts
    jobs: list[tuple[str, str]] = [("instrument", n) for n in lab.instruments]
    jobs += [("dut", n) for n in lab.duts]
    if not jobs:
        return []

    def one(job: tuple[str, str]) -> list[Check]:
        kind, name = job
        try:
            return check_instrument(ctx, name) if kind == "instrument" else check_dut(ctx, name)
        except HarnessError as exc:  # a check's own failure is a row, never a lost target
            return [Check(name, "checks", Status.FAIL, str(exc))]

    with ThreadPoolExecutor(max_workers=min(32, len(jobs)), thread_name_prefix="doctor") as pool:
        results = list(pool.map(one, jobs))
    return [row for rows in results for row in rows]


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
