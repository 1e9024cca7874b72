"""Open an instrument driver by kind (the `kind` strings of the lab config).

Example:
    >>> sorted(k.value for k in InstrumentKind)
    ['hid-keyboard', 'mcci-usb4-switch', 'scpi-switch']
    >>> sw = open_instrument("scpi-switch", "TCPIP0::127.0.0.1::5025::SOCKET", 2.0)  # lazy open
"""

from __future__ import annotations

import enum

from harness.errors import ConfigError
from harness.instruments.base import HotPlugSwitch, Keyboard
from harness.instruments.hid_keyboard import HidKeyboard
from harness.instruments.mcci_switch import McciUsb4Switch
from harness.instruments.scpi_switch import ScpiSwitch


class InstrumentKind(enum.Enum):
    SCPI_SWITCH = "scpi-switch"
    MCCI_USB4_SWITCH = "mcci-usb4-switch"
    HID_KEYBOARD = "hid-keyboard"


def open_instrument(kind: str, resource: str, timeout_s: float) -> HotPlugSwitch | Keyboard:
    """Build the driver for `kind`; the VISA session opens on first use (bounded by timeout_s)."""
    try:
        k = InstrumentKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in InstrumentKind)
        raise ConfigError(f"unknown instrument kind {kind!r} (known: {known})") from None
    if timeout_s <= 0:
        raise ConfigError(f"instrument timeout must be > 0, got {timeout_s}")
    if k is InstrumentKind.SCPI_SWITCH:
        return ScpiSwitch(resource, timeout_s=timeout_s)
    if k is InstrumentKind.MCCI_USB4_SWITCH:
        return McciUsb4Switch(resource, timeout_s=timeout_s)
    return HidKeyboard(resource, timeout_s=timeout_s)
