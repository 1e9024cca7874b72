"""`LabSessionControl` against the virtual lab: tb-01 over WinRM, keyboard-1 as its console.

Locking and signing out are Windows operations; unlocking types the password on the virtual HID
keyboard, whose keystrokes reach the simulated console. Every change is awaited by polling
`session_state` within a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.domain.conditions import SessionState
from harness.errors import DutError
from harness.instruments.base import Keyboard
from harness.lab.connect import LabConnector
from harness.lab.session_control import LabSessionControl, SessionControl
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

pytestmark = pytest.mark.integration


@pytest.fixture
def host(connector: LabConnector) -> Iterator[WindowsHost]:
    shell = connector.shell("tb-01")
    try:
        yield WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=10)
    finally:
        shell.close()


@pytest.fixture
def keyboard(connector: LabConnector) -> Iterator[Keyboard]:
    kb = connector.keyboard("keyboard-1")
    try:
        yield kb
    finally:
        kb.close()


def _control(
    host: WindowsHost, keyboard: Keyboard, connector: LabConnector, password: str | None = None
) -> LabSessionControl:
    user, real = connector.credentials("tb-01")
    return LabSessionControl(
        host,
        method="hid-keyboard",
        keyboard=keyboard,
        username=user,
        password=real if password is None else password,
    )


def _dl(what: str) -> Deadline:
    return Deadline.after(5, what)


def test_lock_unlock_sign_out_sign_in(
    host: WindowsHost, keyboard: Keyboard, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    control: SessionControl = _control(host, keyboard, connector)
    control.unlock(_dl("unlocked to start"))
    control.lock(_dl("lock"))
    assert control.state(_dl("state")) is SessionState.LOCKED
    assert runtime.dut_truth("tb-01")["session"] == "locked"
    control.unlock(_dl("unlock"))
    assert control.state(_dl("state")) is SessionState.UNLOCKED
    control.sign_out(_dl("sign out"))
    assert control.state(_dl("state")) is SessionState.NO_USER
    control.unlock(_dl("sign in"))
    assert control.state(_dl("state")) is SessionState.UNLOCKED
    assert runtime.dut_truth("tb-01")["session"] == "unlocked"


def test_wrong_password_is_a_dut_error_with_the_last_state(
    host: WindowsHost, keyboard: Keyboard, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    good = _control(host, keyboard, connector)
    good.lock(_dl("lock"))
    wrong = "not-the-password-123"
    failed_before = runtime.dut_truth("tb-01")["failed_logons"]
    bad = _control(host, keyboard, connector, password=wrong)
    with pytest.raises(DutError, match="last state: locked") as info:
        bad.unlock(Deadline.after(1, "unlock with a wrong password"))
    assert wrong not in str(info.value)
    assert runtime.dut_truth("tb-01")["failed_logons"] == failed_before + 1
    assert host.redact(f"typed {wrong}") == "typed ***"  # the control gave it to the redactor
    good.unlock(_dl("unlock"))
    assert good.state(_dl("state")) is SessionState.UNLOCKED


def test_unlock_by_autologon_reboot(
    host: WindowsHost, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    user, password = connector.credentials("tb-01")
    control = LabSessionControl(
        host, method="autologon-reboot", keyboard=None, username=user, password=password
    )
    boots = runtime.dut_truth("tb-01")["boots"]
    control.sign_out(_dl("sign out"))
    control.unlock(Deadline.after(20, "sign in by autologon"))
    assert control.state(_dl("state")) is SessionState.UNLOCKED
    assert runtime.dut_truth("tb-01")["boots"] == boots + 1
