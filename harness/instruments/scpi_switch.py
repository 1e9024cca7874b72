"""SCPI relay-matrix hot-plug switch driver (pyvisa, pyvisa-py `@py` backend).

`connect(ch)` closes the relay (`ROUT:CLOS (@ch)`), `disconnect(ch)` opens it. After every ROUT
command the driver drains `SYST:ERR?` and raises `InfrastructureError` with the instrument's
code and message on any error, then reads the channel back with `ROUT:CLOS? (@ch)` and raises
if the relay did not move. The error queue is cleared (`*CLS`) when the session opens so that a
previous user's errors are not blamed on us. Every call is bounded by the VISA timeout.

Example:
    >>> sw = ScpiSwitch("TCPIP0::127.0.0.1::5025::SOCKET", timeout_s=2.0)  # opens lazily
    >>> sw.name
    'scpi-switch'

    In a lab: `sw.connect(3); assert sw.state(3); sw.disconnect(3); sw.close()`.
"""

from __future__ import annotations

import re

import pyvisa

from harness.errors import InfrastructureError
from harness.instruments.base import VisaSession
from harness.steps import Stepping, step

_ERR = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')
MAX_ERRORS_DRAINED = 32  # a real queue is 10-30 deep; bound the drain loop anyway


class ScpiSwitch(Stepping):
    """`HotPlugSwitch` over SCPI: channel N closed = device N plugged."""

    def __init__(
        self,
        resource: str,
        *,
        timeout_s: float = 2.0,
        channel_count: int | None = None,
        name: str = "scpi-switch",
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self.name = name
        self.channel_count = channel_count
        self._session = VisaSession(
            name, resource, timeout_s=timeout_s, resource_manager=resource_manager
        )
        self._cleared = False

    @property
    def session(self) -> VisaSession:
        return self._session

    @step()
    def identify(self) -> str:
        return self._query("*IDN?")

    @step("channel")
    def connect(self, channel: int) -> None:
        self._switch("CLOS", channel, closed=True)

    @step("channel")
    def disconnect(self, channel: int) -> None:
        self._switch("OPEN", channel, closed=False)

    @step("channel")
    def state(self, channel: int) -> bool:
        """True if the channel's relay is closed (the device is plugged)."""
        self._check_channel(channel)
        reply = self._query(f"ROUT:CLOS? (@{channel})")
        if reply not in ("0", "1"):
            raise self._fail(f"unexpected reply {reply!r} to ROUT:CLOS? (@{channel})")
        return reply == "1"

    def reset(self) -> None:
        """`*RST` (all channels open) and wait for completion with `*OPC?`."""
        self._write("*RST")
        if self._query("*OPC?") != "1":
            raise self._fail("*OPC? did not answer 1 after *RST")

    def errors(self) -> list[tuple[int, str]]:
        """Drain the instrument's error queue (oldest first)."""
        out: list[tuple[int, str]] = []
        for _ in range(MAX_ERRORS_DRAINED):
            reply = self._query("SYST:ERR?")
            m = _ERR.match(reply)
            if m is None:
                raise self._fail(f"unparseable SYST:ERR? reply {reply!r}")
            code = int(m.group(1))
            if code == 0:
                return out
            out.append((code, m.group(2)))
        return out

    def close(self) -> None:
        self._session.close()
        self._cleared = False

    # -- internals --------------------------------------------------------------------------

    def _switch(self, verb: str, channel: int, *, closed: bool) -> None:
        self._check_channel(channel)
        command = f"ROUT:{verb} (@{channel})"
        self._write(command)
        errors = self.errors()
        if errors:
            listed = "; ".join(f'{code},"{msg}"' for code, msg in errors)
            raise self._fail(f"{command} failed: {listed}")
        if self.state(channel) != closed:
            raise self._fail(f"{command}: read-back shows channel {channel} did not switch")

    def _check_channel(self, channel: int) -> None:
        top = self.channel_count
        if channel < 1 or (top is not None and channel > top):
            raise ValueError(f"{self.name}: channel {channel} not in 1..{top or 'N'}")

    def _prepare(self) -> None:
        if not self._cleared:
            self._session.write("*CLS")
            self._cleared = True

    def _write(self, command: str) -> None:
        self._prepare()
        self._session.write(command)

    def _query(self, command: str) -> str:
        self._prepare()
        return self._session.query(command)

    def _fail(self, message: str) -> InfrastructureError:
        return self._session.error(message)
