"""One simulated DUT as the network sees it: its machine and its WinRM (HTTP, HTTPS) and SSH endpoints.

The endpoints listen while the machine is powered and no `refuse-connections` fault is active;
otherwise they are stopped (new connections refused, open ones dropped) and, when both hold
again, they listen on the same ports as before: while stopped, each port is held
(`port_hold.py`), so no other socket on the machine takes it meanwhile. `reconcile()` applies
that rule; the runtime calls it from its worker threads only (this DUT's own for power events,
its fault worker for faults; one at a time), never from a machine thread (a machine's power
callback may come from inside a command that a WinRM connection thread is running, and stopping
the endpoint joins that thread).

The `DutMachine` protocol is what the runtime needs from a simulated Windows machine
(`harness.virtual_lab.windows.machine.WindowsMachine` implements it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.config.endpoints import DutEndpoints, SshEndpointInfo, WinRmEndpoint
from harness.config.lab_models import VirtualFault
from harness.virtual_lab.port_hold import PortHold, start_on
from harness.virtual_lab.ssh_server import LOOPBACK, SshEndpoint
from harness.virtual_lab.winrm.executor import Executor
from harness.virtual_lab.winrm.server import WinRMEndpoint

log = logging.getLogger(__name__)


class DutMachine(Protocol):
    """The simulated Windows machine behind a DUT's endpoints."""

    @property
    def executor(self) -> Executor: ...
    @property
    def hostname(self) -> str: ...
    def start(self) -> None: ...
    def close(self) -> None: ...
    def plug(self, port: str) -> None: ...
    def unplug(self, port: str) -> None: ...
    def console_keys(self, keys: str) -> None: ...
    def add_power_listener(self, cb: Callable[[Any], None]) -> None: ...
    def request_reboot(self) -> None: ...
    def apply_fault(self, fault: VirtualFault) -> None: ...
    def clear_faults(self) -> None: ...
    def arm_fault(self, fault: VirtualFault, fire: Callable[[VirtualFault], None]) -> None: ...
    def enter_recovery_key(self) -> bool: ...
    def truth(self) -> dict[str, Any]: ...
    def operations_log(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class DutAccount:
    """The one account a DUT's endpoints accept."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"DutAccount(username={self.username!r})"


class DutNode:
    """A DUT's machine plus its three endpoints, and the state that decides if they listen."""

    def __init__(
        self,
        name: str,
        machine: DutMachine,
        account: DutAccount,
        *,
        workdir: Path,
        fs_root: Path,
        allow_unencrypted: bool,
    ) -> None:
        self.name = name
        self.machine = machine
        self.account = account
        cert_dir = workdir / "winrm-pki"
        # the host's WSMan:\localhost\Shell\IdleTimeout (quirk) and the lab's time scale
        idle_ms = int(getattr(machine, "quirks", {}).get("winrm_idle_timeout_ms", 7_200_000))
        scale = float(getattr(machine, "time_scale", 1.0))
        self.winrm_http = WinRMEndpoint(
            machine.executor,
            account.username,
            account.password,
            https=False,
            allow_unencrypted=allow_unencrypted,
            cert_dir=cert_dir,
            shell_idle_timeout_ms=idle_ms,
            time_scale=scale,
        )
        self.winrm_https = WinRMEndpoint(
            machine.executor,
            account.username,
            account.password,
            https=True,
            allow_unencrypted=False,
            cert_dir=cert_dir,
            shell_idle_timeout_ms=idle_ms,
            time_scale=scale,
        )
        self.ssh = SshEndpoint(
            machine.executor,
            account.username,
            account.password,
            host_key_dir=workdir / "ssh",
            sftp_root=fs_root,
            default_shell=getattr(machine, "openssh_default_shell", lambda: None),
            quirks=dict(getattr(machine, "quirks", {})),
        )
        self.powered = True
        self.refusing = False
        self._listening = False
        #: each endpoint's port while it is stopped (none before the first start)
        self._holds: dict[str, PortHold | None] = {}
        self._changed = threading.Condition()
        #: reconcile() runs on this DUT's worker (power events) and on the runtime's (faults,
        #: clear): one at a time
        self._reconciling = threading.RLock()

    @property
    def listening(self) -> bool:
        return self._listening

    def wait_listening(self, listening: bool, timeout_s: float) -> bool:
        """Wait until the endpoints are up (or down); False at the deadline."""
        with self._changed:
            return self._changed.wait_for(lambda: self._listening is listening, timeout_s)

    def _set_listening(self, listening: bool) -> None:
        with self._changed:
            self._listening = listening
            self._changed.notify_all()

    # -- worker threads (this DUT's own, the runtime's) ------------------------------------------
    def reconcile(self) -> None:
        """Listen iff powered and not refusing; same ports as before after a pause."""
        with self._reconciling:
            self._reconcile()

    def _reconcile(self) -> None:
        want = self.powered and not self.refusing
        if want and not self._listening:
            for name, endpoint in self._endpoints().items():
                start_on(self._holds.pop(name, None), endpoint.start)
            self._set_listening(True)
            log.info("%s: endpoints listening", self.name)
        elif not want and self._listening:
            self._stop_endpoints()
            # kept while down, and before the DUT is seen down: on a busy machine another
            # socket could take a port meanwhile, and the endpoint would not listen at boot
            for name, endpoint in self._endpoints().items():
                self._holds[name] = PortHold.take(LOOPBACK, endpoint.port)
            self._set_listening(False)
            log.info("%s: endpoints down (powered=%s)", self.name, self.powered)

    def on_power(self, state: str) -> None:
        """`state` is a PowerEvent's value: "down" or "up"."""
        with self._reconciling:
            self.powered = state != "down"
            self._reconcile()

    def set_reject_auth(self, reject: bool) -> None:
        for ep in (self.winrm_http, self.winrm_https, self.ssh):
            ep.reject_auth = reject

    def drop_next(self, armed: bool = True) -> None:
        for ep in (self.winrm_http, self.winrm_https, self.ssh):
            ep.drop_next(armed)

    def clear(self) -> None:
        """Clear the endpoint faults (the runtime clears the machine's)."""
        self.refusing = False
        self.set_reject_auth(False)
        self.drop_next(False)
        self.reconcile()

    def close(self) -> None:
        self._stop_endpoints()
        self._set_listening(False)
        for hold in self._holds.values():
            if hold is not None:
                hold.release()
        self._holds.clear()

    def _endpoints(self) -> dict[str, WinRMEndpoint | SshEndpoint]:
        return {"winrm-http": self.winrm_http, "winrm-https": self.winrm_https, "ssh": self.ssh}

    def _stop_endpoints(self) -> None:
        for ep in self._endpoints().values():
            try:
                ep.stop()
            except Exception:  # one endpoint's trouble must not keep the others up
                log.exception("%s: stopping an endpoint failed", self.name)

    # -- facts ----------------------------------------------------------------------------------
    def endpoints(self, control_url: str) -> DutEndpoints:
        return DutEndpoints(
            winrm=WinRmEndpoint(
                http_url=self.winrm_http.url,
                https_url=self.winrm_https.url,
                ca_file=str(self.winrm_https.ca_file),
                username=self.account.username,
                password=self.account.password,
            ),
            ssh=SshEndpointInfo(
                host=LOOPBACK,
                port=self.ssh.port,
                username=self.account.username,
                password=self.account.password,
                known_hosts=str(self.ssh.known_hosts_path),
            ),
            control_url=f"{control_url}/duts/{self.name}",
        )
