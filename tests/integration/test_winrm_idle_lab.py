"""Issue 14 / G4 / F26 through the whole virtual lab: tb-01's
`WSMan:\\localhost\\Shell\\IdleTimeout` is 60000 ms (quirk `winrm_idle_timeout_ms`, the
documented minimum) and the lab runs at time_scale 0.02, so a shell with no request for 1.2 s is
deleted by the lab's clock. A `WindowsHost` over the harness's WinRM transport left idle past
that still answers its next operation (a new shell, once)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from harness.config.lab import Lab, load_lab
from harness.lab.connect import LabConnector
from harness.remote.winrm_transport import WinRMShell
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import virtual_lab_text

pytestmark = pytest.mark.integration

IDLE_MS, SCALE = 60_000, 0.02


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    text = virtual_lab_text()
    tb01 = "      secure_boot: true\n      boot_time_s: 45\n      quirks: {}"
    assert text.count(tb01) == 1 and "  time_scale: 0.045\n" in text, "lab changed shape"
    text = text.replace(
        tb01, tb01.replace("quirks: {}", f"quirks:\n        winrm_idle_timeout_ms: {IDLE_MS}")
    )
    text = text.replace("  time_scale: 0.045\n", f"  time_scale: {SCALE}\n")
    path = tmp_path_factory.mktemp("winrm-idle-lab") / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return load_lab(path)


@pytest.fixture
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    with connector.shell("tb-01") as shell:
        assert isinstance(shell, WinRMShell)
        yield WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20)


def test_an_idle_windows_host_answers_after_the_lab_deleted_its_shell(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    endpoint = runtime.node("tb-01").winrm_http
    readiness = tb01.call("lab_readiness", {"echo": "idle"})
    assert readiness["wsman"]["idle_timeout_ms"] == IDLE_MS  # what the host says it does...
    creates = endpoint.action_counts["Create"]
    assert creates >= 1
    deadline = time.monotonic() + 5.0
    while endpoint.shell_count:  # ...and does, by the lab's clock (no hook, no request)
        assert time.monotonic() < deadline, "the idle shell was not deleted"
        time.sleep(0.02)
    assert tb01.host_facts().computer_name == "TB-01"
    assert endpoint.action_counts["Create"] == creates + 1
    assert isinstance(tb01.shell, WinRMShell)
    errors = [e for e in tb01.shell.transcript.entries if e.error]
    assert errors == []  # the re-open is not a failed call
