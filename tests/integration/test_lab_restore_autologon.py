"""`harness lab restore`: Winlogon autologon left on is reported as drift, then turned off.

tb-01 of the default virtual lab is unlocked by `autologon-reboot` here (its baseline: autologon
off). A run killed after such an unlock leaves AutoAdminLogon=1 and a stored password: the DUT
signs itself in at every boot. `restore_lab` must say so in its found lines (with the password in
plain text when the registry holds it) and leave autologon off, by the virtual lab's own truth.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.config.lab import Lab, load_lab
from harness.config.plan import Timeouts
from harness.lab.connect import LabConnector
from harness.lab.restore import restore_lab
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import virtual_lab_text

pytestmark = pytest.mark.integration

WINLOGON = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
TIMEOUTS = Timeouts(step_s=30, reboot_s=60, plug_s=30, remote_call_s=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    text = virtual_lab_text()
    old = "      unlock: hid-keyboard\n      keyboard: keyboard-1\n"
    assert text.count(old) == 1, "lab changed shape"
    path = tmp_path_factory.mktemp("autologon-lab") / "lab.yaml"
    path.write_text(text.replace(old, "      unlock: autologon-reboot\n"), encoding="utf-8")
    lab = load_lab(path)
    assert lab.duts["tb-01"].session_control.unlock == "autologon-reboot"
    assert lab.duts["m2-01"].session_control.unlock == "hid-keyboard"
    return lab


def _winlogon(runtime: VirtualLabRuntime, dut: str) -> tuple[dict[str, Any], list[str]]:
    """tb-01's Winlogon values and LSA secret names, as the virtual lab has them."""
    truth = runtime.dut_truth(dut)
    values = next(v for k, v in truth["registry"].items() if k.lower() == WINLOGON.lower())
    return values, truth["lsa_secrets"]


def test_autologon_with_a_plain_text_password_is_found_and_turned_off(
    lab: Lab, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    # the virtual DUTs boot signed in by autologon, the password a plain-text registry value
    before, _ = _winlogon(runtime, "tb-01")
    assert before["AutoAdminLogon"] == "1" and "DefaultPassword" in before, before
    user = str(before["DefaultUserName"])

    results = {r.dut: r for r in restore_lab(lab, connector, TIMEOUTS, ["tb-01", "m2-01"])}

    tb = results["tb-01"]
    want = f"autologon on for {user} (baseline off) and its password in the registry in plain text"
    assert want in tb.found, tb.lines()
    assert tb.restored, tb.lines()
    after, secrets = _winlogon(runtime, "tb-01")
    assert after["AutoAdminLogon"] == "0" and "DefaultPassword" not in after, after
    assert "DefaultPassword" not in secrets
    # a DUT unlocked by its HID keyboard has no autologon baseline: nothing said about it
    m2 = results["m2-01"]
    assert not [f for f in m2.found if "autologon" in f], m2.lines()


def test_autologon_with_the_password_as_lsa_secret_is_found_and_turned_off(
    lab: Lab, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    user, password = connector.credentials("tb-01")
    with connector.shell("tb-01") as shell:
        host = WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20)
        assert host.set_autologon(True, user=user, password=password)  # what the unlock does
        state = host.autologon_state()
    assert (state.enabled, state.user, state.password_in_registry) == (True, user, False)
    _, secrets = _winlogon(runtime, "tb-01")
    assert "DefaultPassword" in secrets

    (tb,) = restore_lab(lab, connector, TIMEOUTS, ["tb-01"])

    assert f"autologon on for {user} (baseline off)" in tb.found, tb.lines()
    assert tb.restored, tb.lines()
    after, secrets = _winlogon(runtime, "tb-01")
    assert after["AutoAdminLogon"] == "0" and "DefaultPassword" not in after, after
    assert "DefaultPassword" not in secrets
