"""A DUT whose Windows OpenSSH has PowerShell as DefaultShell (F16), in a whole virtual lab.

The lab is a copy of `lab_config/virtual.yaml` whose m2-01 (SSH) has the quirk
`openssh_default_shell` (the registry value `HKLM\\SOFTWARE\\OpenSSH\\DefaultShell` that many
setup guides set): exec lines are then parsed by powershell.exe and a native program's exit
code becomes 0 or 1, as on Windows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.doctor import Status, run_doctor
from harness.lab.connect import LabConnector
from harness.remote.ssh_transport import SshShell
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import virtual_lab_text

ROOT = Path(__file__).resolve().parents[2]
PS_SHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    text = virtual_lab_text()
    m201 = "      quirks:\n        inf3_on_win10: like-2"
    assert m201 in text, "lab changed shape"
    text = text.replace(
        m201, f"      quirks:\n        openssh_default_shell: '{PS_SHELL}'\n{m201[14:]}"
    )
    path = tmp_path_factory.mktemp("pslab") / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    lab = load_lab(path)
    assert lab.virtual is not None
    assert lab.virtual.duts["m2-01"].quirks["openssh_default_shell"] == PS_SHELL
    return lab


def test_doctor_deep_passes_and_says_how_the_shell_is_handled(
    lab: Lab, connector: LabConnector
) -> None:
    checks = [c for c in run_doctor(lab, connector, timeout_s=20, deep=True) if c.target == "m2-01"]
    assert not [c for c in checks if c.status is Status.FAIL], checks
    row = next(c for c in checks if c.name == "OpenSSH DefaultShell")
    assert row.status is Status.OK and PS_SHELL in row.detail and "cmd.exe /c" in row.detail


@pytest.mark.parametrize("persistent", [True, False], ids=["host", "per-call"])
def test_operations_and_exit_codes_under_a_powershell_default_shell(
    connector: LabConnector, persistent: bool
) -> None:
    shell = connector.shell("m2-01")
    assert isinstance(shell, SshShell)
    shell.persistent_powershell = persistent
    with shell:
        assert shell.run("exit", ["/b", "9"], timeout_s=10).exit_code == 9
        r = shell.run_powershell("Write-Output 'x'; exit 3", timeout_s=10)
        assert (r.exit_code, r.stdout) == (3, "x\r\n")
        host = WindowsHost(shell, name="m2-01", catalog=OperationCatalog(), default_timeout_s=20)
        assert host.host_facts().computer_name == "M2-01"
