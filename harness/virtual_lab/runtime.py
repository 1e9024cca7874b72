"""The virtual lab at run time: every simulated DUT, instrument and the control endpoint, wired.

    with VirtualLabRuntime(load_lab("lab_config/virtual.yaml"), workdir=tmp) as rt:
        ep = rt.endpoints()      # LabEndpoints: URLs, ports, credentials, control URL + token

Per DUT in `lab.virtual.duts` (see `dut_node.py`): a `WindowsMachine`, WinRM over HTTP (NTLM;
Basic only if the DUT's transport says `allow_unencrypted`) and over HTTPS (its own lab CA), and
SSH (its own host key; SFTP rooted in the machine's file system), all on 127.0.0.1 with free
ports. Each DUT has its own account `lab-<dut>` with a generated password, or `password` for
every DUT. NTLM users are per process with one password each: a second lab in the same process
reuses the password already registered for `lab-<dut>` (an explicit, different `password` then
fails to start).

Instruments: a `scpi-switch` or `mcci-usb4-switch` channel closing plugs the device wired to it
(`duts.<dut>.ports.<port>.switch/channel`) into its DUT port, opening unplugs it; a
`hid-keyboard`'s keys go to the console of every DUT whose `session_control.keyboard` names it.

Power and faults: fault changes are queued to one worker thread, a machine's power callbacks to
its DUT's own worker, which stops the DUT's endpoints when it powers down (or
`refuse-connections` is active) and restarts them on the same ports when it is up again;
`settle()` waits for both. `lab.virtual.faults` are applied at
start; the control endpoint (`control.py`) adds and clears faults at run time.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.config.endpoints import ControlEndpoint, InstrumentEndpoint, LabEndpoints
from harness.config.lab import Lab
from harness.config.lab_models import SWITCH_KINDS, VirtualFault, WinRmTransport
from harness.virtual_lab.control import ControlServer
from harness.virtual_lab.dut_node import DutAccount, DutMachine, DutNode
from harness.virtual_lab.hid_keyboard import HidKeyboardServer
from harness.virtual_lab.mcci_switch import McciSwitchServer
from harness.virtual_lab.scpi_switch import ScpiSwitchServer
from harness.virtual_lab.service import Service
from harness.virtual_lab.tcp_server import FaultKind, LineServer
from harness.virtual_lab.winrm.auth import registered_ntlm_password

log = logging.getLogger(__name__)
_T = TypeVar("_T")
MachineFactory = Callable[..., DutMachine]
ENDPOINT_FAULTS = frozenset({"refuse-connections", "drop-connection", "auth-failure"})
SWITCH_FAULTS = {
    "switch-silent": FaultKind.SILENT,
    "switch-error": FaultKind.ERROR,
    "switch-stream": FaultKind.STREAM,
    "switch-garbage": FaultKind.GARBAGE,
}
_WORK_TIMEOUT_S = 30.0
_DEFAULT_SCPI_CHANNELS = 16


def windows_machine(name: str, **kwargs: Any) -> DutMachine:
    """The default machine factory: the Windows model."""
    from harness.virtual_lab.windows.executor import WindowsExecutor
    from harness.virtual_lab.windows.machine import WindowsMachine

    machine: DutMachine = WindowsMachine(name, executor=WindowsExecutor, **kwargs)
    return machine


class _Worker:
    """One thread running queued jobs in order; `stop` joins it against a deadline."""

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        fut: concurrent.futures.Future[_T] = concurrent.futures.Future()
        if self._closed:
            fut.set_exception(RuntimeError("the lab is stopping"))
        else:
            self._queue.put((fn, fut))
        return fut

    def stop(self, timeout_s: float) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("virtual lab worker still busy after %.1f s", timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:
                log.exception("virtual lab job failed")
                fut.set_exception(exc)


class VirtualLabRuntime(Service):
    """All of a lab's virtual DUTs and instruments, listening on 127.0.0.1."""

    def __init__(
        self,
        lab: Lab,
        *,
        workdir: Path,
        password: str | None = None,
        machine_factory: MachineFactory = windows_machine,
    ) -> None:
        if lab.virtual is None:
            raise ValueError(f"{lab.path} has no 'virtual:' section")
        self.lab = lab
        self.virtual = lab.virtual
        self.workdir = Path(workdir)
        self._password = password
        self._machine_factory = machine_factory
        self.nodes: dict[str, DutNode] = {}
        self.instruments: dict[str, LineServer] = {}
        self._faults: list[VirtualFault] = []
        self._worker: _Worker | None = None
        #: one worker per DUT for its power events: a DUT whose endpoints are slow to stop (a
        #: request thread that does not end) must not delay another DUT's boot
        self._dut_workers: dict[str, _Worker] = {}
        self._control: ControlServer | None = None
        self._token = secrets.token_urlsafe(32)
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> VirtualLabRuntime:
        if self._worker is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._worker = _Worker("vlab-worker")
        try:
            for name in self.virtual.duts:
                self.nodes[name] = self._make_node(name)
                self._dut_workers[name] = _Worker(f"vlab-{name}")
            for node in self.nodes.values():
                node.machine.start()
            self._run(self._reconcile_all)
            self._start_instruments()
            for fault in self.virtual.faults:
                self.add_fault(fault)
            self._control = ControlServer(self, self._token).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the control endpoint, instruments, endpoints and machines (idempotent)."""
        if self._stopped or self._worker is None:
            return
        self._stopped = True
        if self._control is not None:
            self._control.stop()
        for inst in self.instruments.values():
            inst.stop()
        deadline = time.monotonic() + timeout_s
        for worker in [self._worker, *self._dut_workers.values()]:
            worker.stop(max(0.1, deadline - time.monotonic()))
        for node in self.nodes.values():
            node.close()
            try:
                node.machine.close()
            except Exception:
                log.exception("%s: closing the machine failed", node.name)

    # -- facts ----------------------------------------------------------------------------------
    @property
    def control_url(self) -> str:
        if self._control is None:
            raise RuntimeError("the virtual lab is not running")
        return self._control.url

    def endpoints(self) -> LabEndpoints:
        url = self.control_url
        return LabEndpoints(
            duts={name: node.endpoints(url) for name, node in self.nodes.items()},
            instruments={
                name: InstrumentEndpoint(f"TCPIP0::127.0.0.1::{srv.port}::SOCKET")
                for name, srv in self.instruments.items()
            },
            control=ControlEndpoint(url=url, token=self._token),
        )

    def node(self, dut: str) -> DutNode:
        try:
            return self.nodes[dut]
        except KeyError:
            raise KeyError(f"no virtual DUT named {dut!r}") from None

    def truth(self) -> dict[str, Any]:
        """Every DUT's machine truth, the endpoints' state, the instruments and active faults."""
        return {
            "duts": {name: node.machine.truth() for name, node in self.nodes.items()},
            "endpoints": {
                name: {"listening": node.listening, "powered": node.powered}
                for name, node in self.nodes.items()
            },
            "instruments": {name: _instrument_state(s) for name, s in self.instruments.items()},
            "faults": [f.model_dump(mode="json", exclude_none=True) for f in self.faults()],
        }

    def dut_truth(self, dut: str) -> dict[str, Any]:
        return self.node(dut).machine.truth()

    def operations(self, dut: str) -> list[dict[str, Any]]:
        return self.node(dut).machine.operations_log()

    def settle(self, timeout_s: float = _WORK_TIMEOUT_S) -> None:
        """Return once every power event and fault change queued so far has been applied: the
        fault worker's queue first (a fault change can queue a power event, e.g. clearing a
        hang boots the machine), then each DUT's power worker."""
        deadline = time.monotonic() + timeout_s
        self._run(lambda: None, timeout_s)
        for worker in list(self._dut_workers.values()):
            worker.submit(lambda: None).result(max(0.1, deadline - time.monotonic()))

    def faults(self) -> list[VirtualFault]:
        return list(self._faults)

    # -- actions --------------------------------------------------------------------------------
    def add_fault(self, fault: VirtualFault) -> None:
        """Apply `fault` (ValueError if it names an unknown DUT or instrument)."""
        self._check_targets(fault)
        self._run(lambda: self._apply(fault))

    def clear_faults(self) -> None:
        def clear() -> None:
            self._faults.clear()
            for inst in self.instruments.values():
                inst.set_fault(FaultKind.NONE)
            for node in self.nodes.values():
                node.machine.clear_faults()
                node.clear()

        self._run(clear)

    def power(self, dut: str, action: str) -> None:
        machine = self.node(dut).machine
        if action == "recovery-key":  # typed at the BitLocker recovery screen
            if not machine.enter_recovery_key():
                raise ValueError(f"{dut} is not at the BitLocker recovery screen")
            return
        if action != "reboot":
            raise ValueError(f"unknown power action {action!r} (known: reboot, recovery-key)")
        machine.request_reboot()

    # -- internals ------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], _T], timeout_s: float = _WORK_TIMEOUT_S) -> _T:
        if self._worker is None:
            raise RuntimeError("the virtual lab is not running")
        return self._worker.submit(fn).result(timeout_s)

    def _reconcile_all(self) -> None:
        for node in self.nodes.values():
            node.reconcile()

    def _make_node(self, name: str) -> DutNode:
        dut_dir = self.workdir / "duts" / name
        fs_root = dut_dir / "fs"
        fs_root.mkdir(parents=True, exist_ok=True)
        username = f"lab-{name}"
        # NTLM accounts are per process: a second lab in this process reuses the password
        password = self._password or registered_ntlm_password(username) or secrets.token_urlsafe(18)
        account = DutAccount(username, password)
        machine = self._machine_factory(
            name,
            lab=self.lab,
            fs_root=fs_root,
            username=account.username,
            password=account.password,
        )
        transport = self.lab.duts[name].transport
        node = DutNode(
            name,
            machine,
            account,
            workdir=dut_dir,
            fs_root=fs_root,
            allow_unencrypted=isinstance(transport, WinRmTransport) and transport.allow_unencrypted,
        )
        machine.add_power_listener(lambda event: self._on_power(node, event))
        return node

    def _on_power(self, node: DutNode, event: Any) -> None:
        """Called from a machine thread: queue the work, never block here."""
        state = str(getattr(event, "value", event))
        worker = self._dut_workers.get(node.name)
        if worker is not None and not self._stopped:
            worker.submit(lambda: node.on_power(state))

    def _start_instruments(self) -> None:
        for name, vinst in self.virtual.instruments.items():
            server: LineServer
            if vinst.kind == "scpi-switch":
                channels = self.lab.instruments[name].channels or _DEFAULT_SCPI_CHANNELS
                server = ScpiSwitchServer(channels, self._switch_callback(name))
            elif vinst.kind == "mcci-usb4-switch":
                server = McciSwitchServer(self._switch_callback(name))
            else:
                server = HidKeyboardServer(self._keyboard_callback(name))
            self.instruments[name] = server.start()

    def _switch_callback(self, switch: str) -> Callable[[int, bool], None]:
        wiring = {
            port.channel: (dut, port_name)
            for dut in self.nodes
            for port_name, port in self.lab.duts[dut].ports.items()
            if port.switch == switch
        }

        def on_change(channel: int, closed: bool) -> None:
            target = wiring.get(channel)
            if target is None:
                log.info("%s channel %d: nothing wired", switch, channel)
                return
            machine = self.nodes[target[0]].machine
            (machine.plug if closed else machine.unplug)(target[1])

        return on_change

    def _keyboard_callback(self, keyboard: str) -> Callable[[str], None]:
        duts = [d for d in self.nodes if self.lab.duts[d].session_control.keyboard == keyboard]

        def on_keys(keys: str) -> None:
            for dut in duts:
                self.nodes[dut].machine.console_keys(keys)

        return on_keys

    def _check_targets(self, fault: VirtualFault) -> None:
        if fault.dut is not None and fault.dut not in self.nodes:
            raise ValueError(f"fault {fault.kind}: no virtual DUT named {fault.dut!r}")
        if fault.kind in SWITCH_FAULTS:
            if fault.instrument is not None and fault.instrument not in self.virtual.instruments:
                raise ValueError(f"fault {fault.kind}: no instrument named {fault.instrument!r}")
        elif fault.instrument is not None:
            raise ValueError(f"fault {fault.kind} is about a DUT, not an instrument")

    def _apply(self, fault: VirtualFault) -> None:
        """On the worker: apply one fault to its DUTs (all if none named) or instruments; a
        fault with `operation:` (other than a bugcheck, which the operation itself raises) is
        armed instead and applied when its DUT next runs that operation."""
        self._faults.append(fault)
        nodes = [self.nodes[fault.dut]] if fault.dut else list(self.nodes.values())
        if fault.operation is not None and fault.kind != "bugcheck":
            for node in nodes:
                node.machine.arm_fault(fault, functools.partial(self._fire, node))
            log.info("fault %s armed for operation %s", fault.kind, fault.operation)
            return
        self._apply_now(fault, nodes)

    def _fire(self, node: DutNode, fault: VirtualFault) -> None:
        """From the machine's thread, under its lock, as the armed operation starts."""
        now = fault.model_copy(update={"operation": None, "dut": node.name})
        if fault.kind in ("reboot-hang", "slow-reboot", "enumeration-failure"):
            node.machine.apply_fault(now)  # the machine's own lock is re-entrant
        elif fault.kind == "drop-connection":
            node.drop_next()  # the next request or connection to this DUT is dropped
        elif fault.kind in SWITCH_FAULTS:
            if fault.instrument is None:  # the switches this DUT's ports are wired to
                for switch in {p.switch for p in self.lab.duts[node.name].ports.values()}:
                    self._apply_now(now.model_copy(update={"instrument": switch}), [node])
            else:
                self._apply_now(now, [node])
        elif node.name in self._dut_workers and not self._stopped:  # stops endpoints: worker
            self._dut_workers[node.name].submit(lambda: self._apply_now(now, [node]))

    def _apply_now(self, fault: VirtualFault, nodes: list[DutNode]) -> None:
        if fault.kind in SWITCH_FAULTS:
            for name, server in self.instruments.items():
                kind = self.virtual.instruments[name].kind
                if fault.instrument == name or (fault.instrument is None and kind in SWITCH_KINDS):
                    server.set_fault(SWITCH_FAULTS[fault.kind])
            return
        for node in nodes:
            if fault.kind == "refuse-connections":
                node.refusing = True
                node.reconcile()
            elif fault.kind == "drop-connection":
                node.drop_next()
            elif fault.kind == "auth-failure":
                node.set_reject_auth(True)
                node.drop_next()  # an open, authenticated connection must log on again
            else:
                node.machine.apply_fault(fault)
        log.info("fault %s applied to %s", fault.kind, [n.name for n in nodes])


def _instrument_state(server: LineServer) -> dict[str, Any]:
    state: dict[str, Any] = {"fault": server.fault.value}
    if isinstance(server, ScpiSwitchServer):
        state.update(kind="scpi-switch", closed=sorted(server.closed_channels()))
    elif isinstance(server, McciSwitchServer):
        state.update(kind="mcci-usb4-switch", port=server.current_port)
    else:
        state.update(kind="hid-keyboard")
    return state
