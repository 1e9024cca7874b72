"""Driving a DUT's console session: lock, unlock, sign out, each awaited within a deadline.

`SessionControl` is what a scenario needs to put the console in the session state a test case
asks for (`no-user`, `locked`, `unlocked`). `LabSessionControl` does it with the lab's means:
locking and signing out are Windows operations; unlocking (or signing in from `no-user`) needs a
real console logon, made either by typing the password on the DUT's HID keyboard emulator or by
enabling Winlogon autologon and rebooting. Every change is then awaited by polling
`session_state` with backoff; a state not reached by the deadline is a `DutError` carrying the
last state seen.

>>> control = LabSessionControl(host, method="hid-keyboard", keyboard=kb,
...                            username="lab", password=pw)              # doctest: +SKIP
>>> control.lock(Deadline.after(30, "lock"))                            # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from harness.domain.conditions import SessionState
from harness.errors import ConfigError, DutError
from harness.instruments.base import Keyboard
from harness.remote.deadline import Deadline
from harness.steps import Stepping, step
from harness.windows.actions import reboot_and_wait
from harness.windows.host import WindowsHost
from harness.windows.polling import Backoff, WaitTimeout, poll_until

UnlockMethod = Literal["hid-keyboard", "autologon-reboot", "none"]

#: Polling `session_state` while the console changes state.
SESSION_BACKOFF = Backoff(start_s=0.05, factor=1.5, cap_s=1.0)
#: Share of the unlock deadline an autologon reboot may spend waiting for the host to go down.
REBOOT_DOWN_SHARE = 0.3


class SessionControl(Protocol):
    """Observe and change the console session state of one DUT.

    `own_boot_utc` is the boot time after the last reboot the control itself made (unlock by
    autologon), None if it made none: that boot is the harness's own, not a crash."""

    own_boot_utc: datetime | None

    def state(self, deadline: Deadline) -> SessionState: ...
    def lock(self, deadline: Deadline) -> None: ...
    def unlock(self, deadline: Deadline) -> None: ...
    def sign_out(self, deadline: Deadline) -> None: ...


class LabSessionControl(Stepping):
    """`SessionControl` over a `WindowsHost`, unlocking with a HID keyboard or autologon."""

    def __init__(
        self,
        host: WindowsHost,
        *,
        method: UnlockMethod,
        keyboard: Keyboard | None,
        username: str,
        password: str,
        poll: Backoff = SESSION_BACKOFF,
    ) -> None:
        if method == "hid-keyboard" and keyboard is None:
            raise ConfigError(f"{host.name}: unlock method hid-keyboard needs a keyboard")
        self.host = host
        self.method: UnlockMethod = method
        self.keyboard = keyboard
        self.username = username
        self._password = password
        self.poll = poll
        self.own_boot_utc: datetime | None = None
        if password:
            host.add_secret(password)

    def __repr__(self) -> str:
        return f"LabSessionControl({self.host.name!r}, method={self.method!r})"

    @step()
    def state(self, deadline: Deadline) -> SessionState:
        """The console's state. Right after a switch Windows may report its flags as
        WTS_SESSIONSTATE_UNKNOWN: polled again with backoff, a `DutError` at the deadline."""
        try:
            found = poll_until(
                lambda: self.host.session_state(deadline=deadline).state,
                lambda state: state is not None,
                deadline=deadline,
                sleep=self.host.sleep,
                backoff=self.poll,
            )
        except WaitTimeout as timeout:
            if timeout.error is not None:
                # the host did not answer at the end: an error, not "unknown"
                raise timeout.error from timeout.error.__cause__
            raise DutError(
                f"{self.host.name}: the console session state stayed unknown "
                f"(WTS_SESSIONSTATE_UNKNOWN) for {deadline.budget_s:.1f} s"
            ) from None
        assert found is not None  # `poll_until` returned a value `done` accepted
        return found

    @step()
    def lock(self, deadline: Deadline) -> None:
        if self.state(deadline) is SessionState.LOCKED:
            return
        self.host.lock(deadline=deadline)
        self._await(SessionState.LOCKED, deadline, "lock")

    @step()
    def unlock(self, deadline: Deadline) -> None:
        """Unlock a locked console, or sign in from `no-user`; `unlocked` when it returns."""
        if self.state(deadline) is SessionState.UNLOCKED:
            return
        if self.method == "hid-keyboard":
            assert self.keyboard is not None
            self.keyboard.type_text(self._password)
            self.keyboard.press("ENTER")
        elif self.method == "autologon-reboot":
            self.host.set_autologon(
                True, user=self.username, password=self._password, deadline=deadline
            )
            budget = deadline.remaining()
            # reboot_and_wait checks the crash evidence since the boot before it; the boot it
            # brings is recorded so that the scenario does not take it for an unexpected one
            report = reboot_and_wait(
                self.host,
                deadline,
                down_timeout_s=max(1.0, budget * REBOOT_DOWN_SHARE),
                up_timeout_s=max(1.0, budget),
                reason="dma-lab-harness: sign in by autologon",
            )
            self.own_boot_utc = report.facts.last_boot_utc
        else:
            raise DutError(
                f"{self.host.name}: the console is not unlocked and the lab has no way to "
                "unlock it (session_control unlock: none)"
            )
        self._await(SessionState.UNLOCKED, deadline, f"unlock by {self.method}")

    @step()
    def sign_out(self, deadline: Deadline) -> None:
        if self.state(deadline) is SessionState.NO_USER:
            return
        self.host.sign_out(deadline=deadline)
        self._await(SessionState.NO_USER, deadline, "sign-out")

    def _await(self, want: SessionState, deadline: Deadline, what: str) -> None:
        """Poll `session_state` until `want`; `DutError` with the last state at the deadline."""
        try:
            poll_until(
                lambda: self.state(deadline),
                lambda state: state is want,
                deadline=deadline,
                sleep=self.host.sleep,
                backoff=self.poll,
            )
            return
        except WaitTimeout as timeout:
            seen = timeout.last.value if timeout.last is not None else "never observed"
            detail = f"; last error: {timeout.error}" if timeout.error is not None else ""
        raise DutError(
            self.host.redact(
                f"{self.host.name}: {what}: the session did not become {want.value} within "
                f"{deadline.budget_s:.1f} s (last state: {seen}{detail})"
            )
        )
