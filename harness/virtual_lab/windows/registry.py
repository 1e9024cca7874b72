"""A simulated Windows registry: the handful of keys the DMA harness reads and writes.

Key paths and value names are case-insensitive and case-preserving, as in Windows. Values carry
their registry type (`REG_DWORD`, `REG_SZ`, `REG_MULTI_SZ`). Thread-safety is the owner's job
(the machine holds its lock around every operation).

Every key has a last-write time (`RegQueryInfoKey`'s `lpftLastWriteTime` on a real host), from
`clock`: setting or deleting a value writes its key; creating or deleting a subkey writes the
parent. Creating a key creates its missing parents. A key never written since the registry was
made reads as written at `installed`.

>>> reg = Registry()
>>> reg.set(r"HKLM\\SYSTEM\\CurrentControlSet\\Services\\nvme\\Parameters", "DmaRemappingCompatible", 1)
>>> reg.get(r"hklm\\system\\currentcontrolset\\services\\NVME\\parameters", "dmaremappingcompatible")
1
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
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
POLICIES_WINDOWS = r"HKLM\SOFTWARE\Policies\Microsoft\Windows"
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


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parent_key(key: str) -> str | None:
    """`HKLM\\A\\B` → `HKLM\\A`; a hive root has none."""
    parts = [p for p in key.strip("\\").split("\\") if p]
    return "\\".join(parts[:-1]) if len(parts) > 1 else None


class Registry:
    """Keys → values; missing keys and values read as None."""

    def __init__(
        self, clock: Callable[[], datetime] = _utcnow, installed: datetime | None = None
    ) -> None:
        self.clock = clock
        self.installed = installed or clock()
        self._keys: dict[str, tuple[str, dict[str, RegValue]]] = {}
        self._written: dict[str, datetime] = {}

    def _touch(self, key: str) -> None:
        self._written[_norm(key)] = self.clock()

    def create_key(self, key: str) -> None:
        """Create `key` and its missing parents (each creation writes the parent)."""
        if _norm(key) in self._keys:
            return
        parent = parent_key(key)
        if parent is not None:
            self.create_key(parent)
            self._touch(parent)
        self._keys[_norm(key)] = (key, {})
        self._touch(key)

    def exists(self, key: str) -> bool:
        return _norm(key) in self._keys

    def last_write(self, key: str) -> datetime | None:
        """When `key` was last written; `None` if it does not exist."""
        if not self.exists(key):
            return None
        return self._written.get(_norm(key), self.installed)

    def nearest_written(self, key: str, *, stop: str) -> tuple[str, datetime] | None:
        """(path, last-write time) of `key`, else of its nearest existing parent up to `stop`."""
        path: str | None = key
        while path is not None:
            written = self.last_write(path)
            if written is not None:
                return path, written
            path = None if _norm(path) == _norm(stop) else parent_key(path)
        return None

    def set(self, key: str, name: str, data: Any, type: RegType | None = None) -> None:
        kind = type or _infer_type(data)
        if kind is RegType.DWORD:
            data = int(data) & 0xFFFFFFFF
        elif kind is RegType.MULTI_SZ:
            data = list(data)
        self.create_key(key)
        _, values = self._keys[_norm(key)]
        values[name.lower()] = RegValue(name, kind, data)
        self._touch(key)

    def get(self, key: str, name: str) -> Any:
        value = self.value(key, name)
        return None if value is None else value.data

    def value(self, key: str, name: str) -> RegValue | None:
        entry = self._keys.get(_norm(key))
        return None if entry is None else entry[1].get(name.lower())

    def delete(self, key: str, name: str) -> bool:
        entry = self._keys.get(_norm(key))
        deleted = entry is not None and entry[1].pop(name.lower(), None) is not None
        if deleted:
            self._touch(key)
        return deleted

    def delete_key(self, key: str) -> None:
        """Delete `key` and its subkeys (which writes the parent)."""
        prefix = _norm(key)
        doomed = [k for k in self._keys if k == prefix or k.startswith(prefix + "\\")]
        for k in doomed:
            del self._keys[k]
            self._written.pop(k, None)
        parent = parent_key(key)
        if doomed and parent is not None and self.exists(parent):
            self._touch(parent)

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
