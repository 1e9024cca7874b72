"""MCCI Model 3141 "USB4 Switch" driver (a 2:1 switch for USB4/Thunderbolt hot-plug).

Why pyvisa and not a plain socket: the real 3141 is a USB CDC serial device
(`ASRL/dev/ttyACM0::INSTR` or `ASRLCOM5::INSTR`, 8N1, 9600 baud per MCCI's scripts, 115200 in
MCCI's Cricket app), while the virtual lab serves the same text protocol on
`TCPIP0::127.0.0.1::PORT::SOCKET`. pyvisa-py handles both with the same read/write/timeout code
(serial needs the `pyserial` package), so one driver covers the lab and the bench.

Mapping: `connect(1|2)` sends `port N`; `disconnect(channel)` sends `port 0`. The 3141 connects
at most one peripheral at a time and has no "disconnect only port N" command, so **disconnecting
any channel disconnects all**. `state(channel)` asks `port` and compares. Each command answers
one CR LF-terminated line; a line starting with `Error` raises `InfrastructureError`, and every
switch is verified by reading `port` back.

Example:
    >>> sw = McciUsb4Switch("ASRL/dev/ttyACM0::INSTR", timeout_s=2.0, baud_rate=9600)  # lazy
    >>> sw.name
    'mcci-usb4-switch'
"""

from __future__ import annotations

import pyvisa

from harness.errors import InfrastructureError
from harness.instruments.base import VisaSession
from harness.steps import Stepping, step

CHANNELS = (1, 2)


class McciUsb4Switch(Stepping):
    """`HotPlugSwitch` for the MCCI 3141: channels 1 and 2, mutually exclusive."""

    def __init__(
        self,
        resource: str,
        *,
        timeout_s: float = 2.0,
        baud_rate: int = 9600,
        name: str = "mcci-usb4-switch",
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self.name = name
        self._session = VisaSession(
            name,
            resource,
            timeout_s=timeout_s,
            read_termination="\r\n",
            write_termination="\r\n",
            serial_baud=baud_rate,
            resource_manager=resource_manager,
        )

    @property
    def session(self) -> VisaSession:
        return self._session

    @step()
    def identify(self) -> str:
        return self._command("version")

    @step("channel")
    def connect(self, channel: int) -> None:
        self._check_channel(channel)
        self._select(channel)

    @step("channel")
    def disconnect(self, channel: int) -> None:
        """Disconnect: `port 0`, which disconnects whichever peripheral is connected."""
        self._check_channel(channel)
        self._select(0)

    @step("channel")
    def state(self, channel: int) -> bool:
        self._check_channel(channel)
        return self.current_port() == channel

    def current_port(self) -> int:
        """The connected peripheral port (0 = none)."""
        reply = self._command("port")
        if reply not in ("0", "1", "2"):
            raise self._fail(f"unexpected reply {reply!r} to 'port'")
        return int(reply)

    def close(self) -> None:
        self._session.close()

    def _select(self, port: int) -> None:
        self._command(f"port {port}")
        now = self.current_port()
        if now != port:
            raise self._fail(f"'port {port}': read-back shows port {now}")

    def _command(self, command: str) -> str:
        reply = self._session.query(command)
        if reply.lower().startswith("error"):
            raise self._fail(f"{command!r} failed: {reply}")
        return reply

    def _check_channel(self, channel: int) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"{self.name}: channel {channel} not in {CHANNELS}")

    def _fail(self, message: str) -> InfrastructureError:
        return self._session.error(message)
