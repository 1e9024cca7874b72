"""HID keyboard emulator driver: types on a DUT's console (e.g. the password at the lock screen).

Speaks the emulator's line protocol through pyvisa (`TCPIP0::host::port::SOCKET`, `\\n`):
`TYPE <text>` and `KEY <name>` each answer `OK` or `ERR <reason>`; `ERR` raises
`InfrastructureError`. The typed text is never logged nor kept in the transcript nor put in an
error message: only its length is (`TYPE <8 characters>`).

Example:
    >>> kbd = HidKeyboard("TCPIP0::127.0.0.1::5026::SOCKET", timeout_s=2.0)  # opens lazily
    >>> kbd.name
    'hid-keyboard'

    In a lab: `kbd.type_text(password); kbd.press("ENTER"); kbd.close()`.
"""

from __future__ import annotations

import pyvisa

from harness.config.lab_models import is_typable
from harness.instruments.base import VisaSession
from harness.steps import Stepping, step


class HidKeyboard(Stepping):
    """`Keyboard` over the virtual lab's HID emulator protocol."""

    def __init__(
        self,
        resource: str,
        *,
        timeout_s: float = 2.0,
        name: str = "hid-keyboard",
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self.name = name
        self._session = VisaSession(
            name, resource, timeout_s=timeout_s, resource_manager=resource_manager
        )

    @property
    def session(self) -> VisaSession:
        return self._session

    def identify(self) -> str:
        return self._session.query("*IDN?")

    @step()
    def type_text(self, text: str) -> None:
        """Type `text` (printable ASCII, no line breaks); never logged."""
        if not text:
            return
        if not is_typable(text):
            raise ValueError(f"{self.name}: text must be printable ASCII without line breaks")
        self._expect_ok(f"TYPE {text}", shown=f"TYPE <{len(text)} characters>")

    @step("key")
    def press(self, key: str) -> None:
        """Press a key or chord: `ENTER`, `TAB`, `F5`, `CTRL+ALT+DEL`."""
        if not key or any(c in key for c in "\r\n"):
            raise ValueError(f"{self.name}: bad key name")
        self._expect_ok(f"KEY {key}", shown=f"KEY {key.upper() if len(key) > 1 else '<key>'}")

    def close(self) -> None:
        self._session.close()

    def _expect_ok(self, command: str, *, shown: str) -> None:
        reply = self._session.query(command, shown=shown)
        if reply != "OK":
            raise self._session.error(f"{shown!r} refused: {reply}")
