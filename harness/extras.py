"""Optional dependencies, installed with the package's extras, and the error that names them.

    pip install 'dma-lab-harness[serial]'    pyserial: instruments on a serial port (ASRL...)
    pip install 'dma-lab-harness[keyring]'   keyring: `keyring:SERVICE/USER` secret references

Standard library only.
"""

from __future__ import annotations

import importlib.util

#: The distribution name, as `pip install` spells it.
DISTRIBUTION = "dma-lab-harness"
#: extra -> (the module it provides, what needs it)
EXTRAS = {
    "serial": ("serial", "a serial-port instrument (ASRL resource) needs the 'pyserial' package"),
    "keyring": ("keyring", "a keyring: secret reference needs the 'keyring' package"),
}


def install_hint(extra: str) -> str:
    """`pip install 'dma-lab-harness[EXTRA]'`."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def available(extra: str) -> bool:
    """Whether the module of `extra` can be imported here."""
    module = EXTRAS[extra][0]
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: its import is blocked
        return False


def missing_message(extra: str) -> str:
    """Why the extra is needed and how to install it."""
    return f"{EXTRAS[extra][1]}, which is not installed: {install_hint(extra)}"


def is_serial_resource(resource: str) -> bool:
    """A VISA serial resource (`ASRL/dev/ttyACM0::INSTR`, `ASRLCOM5::INSTR`)."""
    return resource.upper().startswith("ASRL")
