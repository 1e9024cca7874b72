"""Open the shells and instruments of a lab, real or virtual, from its config.

A real DUT is reached as its lab config says (address, transport, credentials resolved from
their `env:`/`file:`/`keyring:` references). A virtual DUT is reached through the endpoints the
running virtual lab published (`LabEndpoints`): same transport kind and scheme as configured,
the lab's generated credentials, CA and known_hosts. Instruments with resource `virtual` use the
virtual lab's VISA resource strings.

>>> conn = LabConnector(lab, endpoints)                                    # doctest: +SKIP
>>> with conn.shell("tb-01") as shell: shell.run("hostname", timeout_s=10) # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from harness.config.endpoints import LabEndpoints
from harness.config.lab import Lab
from harness.config.lab_models import SshTransport, WinRmTransport
from harness.errors import ConfigError
from harness.instruments.base import HotPlugSwitch, Keyboard
from harness.instruments.factory import open_instrument
from harness.remote.ssh_transport import SshSettings, SshShell
from harness.remote.transcript import Redactor, Transcript
from harness.remote.winrm_transport import WinRMAuth, WinRMSettings, WinRMShell


class LabConnector:
    def __init__(self, lab: Lab, endpoints: LabEndpoints | None = None) -> None:
        self.lab = lab
        self.endpoints = endpoints

    def _virtual(self, dut: str) -> bool:
        return self.lab.is_virtual(dut)

    def _need_endpoints(self, what: str) -> LabEndpoints:
        if self.endpoints is None:
            raise ConfigError(f"{what} is virtual but the virtual lab is not running")
        return self.endpoints

    def credentials(self, dut: str) -> tuple[str, str]:
        """(username, password) of `dut`; the password is a secret."""
        if self._virtual(dut):
            ep = self._need_endpoints(f"DUT {dut}").duts[dut]
            if isinstance(self.lab.duts[dut].transport, SshTransport):
                return ep.ssh.username, ep.ssh.password
            return ep.winrm.username, ep.winrm.password
        creds = self.lab.duts[dut].credentials
        if creds is None:
            raise self.lab.error(f"DUT {dut} has no credentials", ("duts", dut))
        return creds.username, creds.password.resolve(self.lab.base_dir)

    def shell(self, dut: str, transcript: Transcript | None = None) -> WinRMShell | SshShell:
        config = self.lab.duts[dut]
        user, password = self.credentials(dut)
        transcript = transcript or Transcript(Redactor([password]))
        transcript.redactor.add(password)
        t = config.transport
        if isinstance(t, WinRmTransport):
            if self._virtual(dut):
                ep = self._need_endpoints(f"DUT {dut}").duts[dut].winrm
                url = ep.https_url if t.scheme == "https" else ep.http_url
                ca: Path | None = Path(ep.ca_file)
            else:
                url = f"{t.scheme}://{config.address}:{t.port}/wsman"
                ca = self.lab.resolve_path(t.ca_file) if t.ca_file else None
            settings = WinRMSettings(
                url=url,
                username=user,
                password=password,
                auth=WinRMAuth(t.auth),
                ca_file=ca if t.scheme == "https" else None,
                allow_unencrypted=t.allow_unencrypted,
            )
            return WinRMShell(
                settings, transcript=transcript, persistent_powershell=t.persistent_powershell
            )
        assert isinstance(t, SshTransport)
        if self._virtual(dut):
            sep = self._need_endpoints(f"DUT {dut}").duts[dut].ssh
            host, port, known = sep.host, sep.port, Path(sep.known_hosts)
            key = None
        else:
            host, port = config.address, t.port
            if t.known_hosts is None:
                raise self.lab.error("missing known_hosts", ("duts", dut, "transport"))
            known = self.lab.resolve_path(t.known_hosts)
            key = self.lab.resolve_path(t.key_file) if t.key_file else None
        ssh = SshSettings(
            host=host,
            port=port,
            username=user,
            known_hosts=known,
            password=None if key else password,
            key_filename=key,
        )
        return SshShell(ssh, transcript=transcript, persistent_powershell=t.persistent_powershell)

    def instrument_resource(self, name: str) -> str:
        inst = self.lab.instruments[name]
        if inst.resource != "virtual":
            return inst.resource
        return self._need_endpoints(f"instrument {name}").instruments[name].resource

    def instrument(self, name: str) -> HotPlugSwitch | Keyboard:
        inst = self.lab.instruments[name]
        return open_instrument(inst.kind, self.instrument_resource(name), inst.timeout_s)

    def switch(self, name: str) -> HotPlugSwitch:
        inst = self.instrument(name)
        if not isinstance(inst, HotPlugSwitch):
            raise self.lab.error(f"instrument {name} is not a switch", ("instruments", name))
        return inst

    def keyboard(self, name: str) -> Keyboard:
        inst = self.instrument(name)
        if not isinstance(inst, Keyboard):
            raise self.lab.error(f"instrument {name} is not a keyboard", ("instruments", name))
        return inst
