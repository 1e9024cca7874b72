"""F17 over WinRM: a persistent host that cannot start (quirk `ps_host_blocked`: its
powershell.exe ends before reading stdin, as under Constrained Language) makes the first Send
fault with "The pipe has been ended" (2147942509, nothing ran); the shell falls back to per-call
PowerShell by itself and says so in the transcript, as over SSH."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.lab.connect import LabConnector
from harness.remote.winrm_transport import WinRMShell
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import virtual_lab_text

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    text = virtual_lab_text()
    tb01 = "      secure_boot: true\n      boot_time_s: 45\n      quirks: {}"
    assert text.count(tb01) == 1, "lab changed shape"
    text = text.replace(tb01, tb01.replace("quirks: {}", "quirks:\n        ps_host_blocked: true"))
    path = tmp_path_factory.mktemp("winrm-host-lab") / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return load_lab(path)


def test_a_winrm_host_that_cannot_start_falls_back_to_per_call(connector: LabConnector) -> None:
    with connector.shell("tb-01") as shell:
        assert isinstance(shell, WinRMShell) and shell.persistent_powershell is True
        host = WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20)
        assert host.host_facts().computer_name == "TB-01"  # answered, per call
        assert shell.persistent_powershell is False
        notes = [e for e in shell.transcript.entries if e.command == "persistent PowerShell host"]
        assert len(notes) == 1 and notes[0].error is not None
        assert "could not start" in notes[0].error and "falling back to per-call" in notes[0].error
        assert "language mode" in notes[0].error  # the host's own error text
        starts = shell.powershell_starts
        assert host.host_facts().computer_name == "TB-01"
        assert shell.powershell_starts == starts + 1  # per call from now on, no new host try
