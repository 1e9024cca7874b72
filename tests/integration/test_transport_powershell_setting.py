"""F17: the lab file chooses per-call or persistent PowerShell per DUT
(`transport: {persistent_powershell: false}`), and over SSH a persistent host that cannot start
falls back to per-call PowerShell by itself, saying so in the transcript.

The lab is a copy of `lab_config/virtual.yaml`: tb-01 (WinRM) runs per call; m2-01 (SSH) asks
for the persistent host but has the quirk `ps_host_blocked` (the loop's powershell.exe is refused
before its first statement, as under an application control policy).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.errors import ConfigError
from harness.lab.connect import LabConnector
from harness.remote.ssh_transport import SshShell
from harness.remote.winrm_transport import WinRMShell
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import virtual_lab_text
from tests.unit.test_config_lab import LAB, lab_error

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    text = virtual_lab_text()
    winrm, m201 = "      auth: ntlm\n", "      quirks:\n        inf3_on_win10: like-2"
    assert text.count(winrm) == 1 and m201 in text, "lab changed shape"
    text = text.replace(winrm, winrm + "      persistent_powershell: false\n")
    text = text.replace(m201, "      quirks:\n        ps_host_blocked: true\n" + m201[14:])
    path = tmp_path_factory.mktemp("pslab") / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return load_lab(path)


def _host(shell: WinRMShell | SshShell, name: str) -> WindowsHost:
    return WindowsHost(shell, name=name, catalog=OperationCatalog(), default_timeout_s=20)


def test_the_lab_file_selects_per_call_powershell(lab: Lab, connector: LabConnector) -> None:
    assert lab.duts["tb-01"].transport.persistent_powershell is False
    assert lab.duts["m2-01"].transport.persistent_powershell is True
    with connector.shell("tb-01") as shell:
        assert isinstance(shell, WinRMShell) and shell.persistent_powershell is False
        host = _host(shell, "tb-01")
        for _ in range(2):
            assert host.host_facts().computer_name == "TB-01"
        assert shell.powershell_starts == 2  # one powershell.exe per script


def test_a_host_that_cannot_start_falls_back_to_per_call(connector: LabConnector) -> None:
    with connector.shell("m2-01") as shell:
        assert isinstance(shell, SshShell) and shell.persistent_powershell is True
        host = _host(shell, "m2-01")
        assert host.host_facts().computer_name == "M2-01"
        assert shell.persistent_powershell is False
        notes = [e for e in shell.transcript.entries if e.command == "persistent PowerShell host"]
        assert len(notes) == 1 and notes[0].error is not None
        assert "could not start" in notes[0].error and "falling back to per-call" in notes[0].error
        assert "language mode" in notes[0].error  # the host's own error text
        starts = shell.powershell_starts
        assert host.host_facts().computer_name == "M2-01"
        assert shell.powershell_starts == starts + 1  # per call from now on, no new host try


def test_a_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    text = LAB.replace(
        "      auth: ntlm\n", "      auth: ntlm\n      persistent_powershell: maybe\n"
    )
    msg = lab_error(tmp_path, text)
    assert msg.startswith("lab.yaml:8: duts.tb-01.transport.persistent_powershell: "), msg
    with pytest.raises(ConfigError):
        load_lab(tmp_path / "lab.yaml")
