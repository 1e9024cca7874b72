"""A simulated Windows registry: the handful of keys the DMA harness reads and writes.

Key paths and value names are case-insensitive and case-preserving, as in Windows. Values carry
their registry type (`REG_DWORD`, `REG_SZ`, `REG_MULTI_SZ`). Thread-safety is the owner's job
(the machine holds its lock around every operation).

>>> reg = Registry()
>>> reg.set(r"HKLM\\SYSTEM\\CurrentControlSet\\Services\\nvme\\Parameters", "DmaRemappingCompatible", 1)
>>> reg.get(r"hklm\\system\\currentcontrolset\\services\\NVME\\parameters", "dmaremappingcompatible")
1
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class RegType(enum.Enum):
    DWORD = "REG_DWORD"
    SZ = "REG_SZ"
    MULTI_SZ = "REG_MULTI_SZ"


@dataclass(frozen=True)
class RegValue:
    name: str
    type: RegType
    data: Any


SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
ENUM = r"HKLM\SYSTEM\CurrentControlSet\Enum"
MEMORY_MANAGEMENT = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management"
DMAGUARD = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection"
FVE = r"HKLM\SOFTWARE\Policies\Microsoft\FVE"
WINLOGON = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"


def _norm(path: str) -> str:
    return "\\".join(p for p in path.strip("\\").split("\\") if p).lower()


def _infer_type(data: Any) -> RegType:
    if isinstance(data, bool) or not isinstance(data, (int, str, list, tuple)):
        raise TypeError(f"unsupported registry data {data!r}")
    if isinstance(data, int):
        return RegType.DWORD
    if isinstance(data, str):
        return RegType.SZ
    return RegType.MULTI_SZ


class Registry:
    """Keys → values; missing keys and values read as None."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, dict[str, RegValue]]] = {}

    def set(self, key: str, name: str, data: Any, type: RegType | None = None) -> None:
        kind = type or _infer_type(data)
        if kind is RegType.DWORD:
            data = int(data) & 0xFFFFFFFF
        elif kind is RegType.MULTI_SZ:
            data = list(data)
        _, values = self._keys.setdefault(_norm(key), (key, {}))
        values[name.lower()] = RegValue(name, kind, data)

    def get(self, key: str, name: str) -> Any:
        value = self.value(key, name)
        return None if value is None else value.data

    def value(self, key: str, name: str) -> RegValue | None:
        entry = self._keys.get(_norm(key))
        return None if entry is None else entry[1].get(name.lower())

    def delete(self, key: str, name: str) -> bool:
        entry = self._keys.get(_norm(key))
        return entry is not None and entry[1].pop(name.lower(), None) is not None

    def delete_key(self, key: str) -> None:
        """Delete `key` and its subkeys."""
        prefix = _norm(key)
        for k in [k for k in self._keys if k == prefix or k.startswith(prefix + "\\")]:
            del self._keys[k]

    def values(self, key: str) -> list[RegValue]:
        entry = self._keys.get(_norm(key))
        return [] if entry is None else list(entry[1].values())

    def dump(self) -> dict[str, dict[str, Any]]:
        """Every key (as first written) with its values, for the control endpoint's truth."""
        return {
            path: {v.name: v.data for v in values.values()}
            for path, values in sorted(self._keys.values())
            if values
        }
