"""The INF reader: what a driver package declares about DMA remapping (docs/domain.md §1).

It reads an INF (or ``.inx`` template) the way Windows' setup parser does (see
:mod:`harness.domain.inf_lexer` for encodings, comments, quotes and continuations), picks the
sections Windows would pick on a current x64 Windows 11, and extracts, per model (hardware ID
line), the services with their ``DmaRemappingCompatible`` (per-driver, §1.1) and the device's
``DMA Management`` keys (per-device, §1.2).

>>> info = parse_inf(b'''[Version]
... Signature = "$Windows NT$"
... Class = Net
... [Manufacturer]
... %Mfg% = Models, NTamd64
... [Models.NTamd64]
... %Desc% = Inst, PCI\\\\VEN_8086&DEV_1234
... [Inst.NT.Services]
... AddService = mydrv, 0x2, Svc
... [Svc]
... ServiceBinary = %13%\\\\mydrv.sys
... AddReg = Svc.Reg
... [Svc.Reg]
... HKR, Parameters, DmaRemappingCompatible, 0x00010001, 1
... [Strings]
... Mfg = "Contoso"
... Desc = "Contoso NIC"
... ''')
>>> info.models[0].services[0]
InfService(name='mydrv', binary='%13%\\\\mydrv.sys', dma_remapping_compatible=1)

Decisions (where Windows' rules leave room, or the harness simplifies):

- Models section: for each ``[Manufacturer]`` entry, the decorations that apply to amd64
  (``NT``, ``NTamd64``, ``NT$ARCH$``, optionally with an OS version) are ranked by OS version
  ``(major, minor, build)`` then by architecture specificity; an OS version is assumed to be
  satisfied (the target is the newest x64 Windows 11 workstation), product type must be empty or
  1. The best-ranked one whose section exists is used, else the undecorated section.
- Install section ``X``: ``X.NTamd64``, else ``X.NT``, else ``X``; companions are
  ``<chosen>.HW`` and ``<chosen>.Services``. ``InfModel.install_section`` is ``X`` as written.
  If none of the three exists (Windows would refuse the model), the first candidate that has a
  ``.Services`` or ``.HW`` companion is used.
- ``Include=``/``Needs=`` are ignored (they refer to other INF files that are not at hand).
- Strings: a key is looked up in ``[Strings]``, then ``[Strings.0409]``, then any other
  ``[Strings.LLLL]`` in file order. An undefined ``%key%`` anywhere outside ``[Strings]`` is an
  error; numeric tokens (``%13%``) are dirids and stay as written, ``%%`` is ``%`` (also inside a
  ``[Strings]`` value, whose other ``%`` are inserted as written, e.g. ``"Dev%1!u!"``).
- Registry values: only REG_DWORD entries (type bits ``0x00010001``, FLG_ADDREG_DELVAL not set)
  count, as the kernel reads a DWORD; the last matching entry in AddReg order wins.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.domain.inf_lexer import (
    InfError,
    RawSection,
    decode_inf,
    decoration_rank,
    logical_lines,
    normalize_section,
    parse_int,
    split_fields,
    split_key,
    split_sections,
    unquote,
)

__all__ = [
    "DmaManagement",
    "InfError",
    "InfInfo",
    "InfModel",
    "InfService",
    "package_member",
    "package_paths",
    "parse_inf",
    "read_inf",
    "read_inf_bytes",
    "source_disks_files",
]

#: The largest INF file read, in bytes (the lab YAML loader has the same cap).
MAX_INF_BYTES = 5_000_000
GRAPHICS_CLASS_GUID = "{4d36e968-e325-11ce-bfc1-08002be10318}"
SPSVCINST_ASSOCSERVICE = 0x2
_REG_DWORD = 0x00010001
_ADDREG_TYPE_MASK = 0xFFFF0001
_ADDREG_DELVAL = 0x4


@dataclass(frozen=True)
class InfService:
    name: str
    binary: str | None
    dma_remapping_compatible: int | None  # None = directive absent


@dataclass(frozen=True)
class DmaManagement:
    remapping_supported: int | None
    remapping_flags: int | None


@dataclass(frozen=True)
class InfModel:
    description: str
    hardware_ids: tuple[str, ...]
    install_section: str
    services: tuple[InfService, ...]  # the function driver first when identifiable
    dma_management: DmaManagement


@dataclass(frozen=True)
class InfInfo:
    class_name: str | None
    class_guid: str | None
    graphics: bool
    provider: str | None
    driver_ver: str | None
    catalog_file: str | None
    models: tuple[InfModel, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.class_name,
            "class_guid": self.class_guid,
            "graphics": self.graphics,
            "provider": self.provider,
            "driver_ver": self.driver_ver,
            "catalog_file": self.catalog_file,
            "models": [
                {
                    "description": m.description,
                    "hardware_ids": list(m.hardware_ids),
                    "install_section": m.install_section,
                    "services": [
                        {
                            "name": s.name,
                            "binary": s.binary,
                            "dma_remapping_compatible": s.dma_remapping_compatible,
                        }
                        for s in m.services
                    ],
                    "dma_management": {
                        "remapping_supported": m.dma_management.remapping_supported,
                        "remapping_flags": m.dma_management.remapping_flags,
                    },
                }
                for m in self.models
            ],
        }

    def model_for(self, hardware_id_pattern: str) -> InfModel | None:
        """The first model with a hardware ID matching the fnmatch-style pattern (any case)."""
        pattern = hardware_id_pattern.lower()
        for model in self.models:
            if any(fnmatch.fnmatchcase(h.lower(), pattern) for h in model.hardware_ids):
                return model
        return None


@dataclass(frozen=True)
class _Line:
    """A logical line after quote removal and string substitution."""

    line: int
    key: str | None
    fields: tuple[str, ...]

    def first(self) -> str:
        return self.fields[0] if self.fields else ""


class _Inf:
    """Sections of one INF with strings substituted; the lookups Windows would make."""

    def __init__(self, data: bytes, name: str, arch: str) -> None:
        self.name = name
        self.arch = arch.lower()
        text = decode_inf(data, name)
        self.raw = split_sections(logical_lines(text, name), name, self.arch)
        if "version" not in self.raw:
            raise InfError(name, None, "not an INF file: no [Version] section")
        self.strings = self._string_table()
        self.sections: dict[str, tuple[_Line, ...]] = {
            key: tuple(self._parse_line(r.line, r.text) for r in sec.lines)
            for key, sec in self.raw.items()
            if not _is_strings(key)
        }

    # -- strings ---------------------------------------------------------------------------
    def _string_table(self) -> dict[str, str]:
        ordered: list[RawSection] = []
        if "strings" in self.raw:
            ordered.append(self.raw["strings"])
        if "strings.0409" in self.raw:
            ordered.append(self.raw["strings.0409"])
        ordered += [s for k, s in self.raw.items() if _is_strings(k) and s not in ordered]
        table: dict[str, str] = {}
        for section in ordered:
            local: dict[str, str] = {}
            for raw in section.lines:
                key, value = split_key(raw.text)
                if key is None:
                    continue
                # "%%" in a string value is a literal "%" too; other "%" are kept as written
                local.setdefault(unquote(key).lower(), unquote(value).replace("%%", "%"))
            for key, value in local.items():
                table.setdefault(key, value)
        return table

    def _substitute(self, text: str, line: int) -> str:
        if "%" not in text:
            return text
        out: list[str] = []
        i = 0
        while i < len(text):
            start = text.find("%", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.find("%", start + 1)
            if end < 0:  # a lone percent sign is literal
                out.append(text[start:])
                break
            token = text[start + 1 : end]
            i = end + 1
            if token == "":
                out.append("%")
            elif token.isdigit():  # a dirid such as %13%: kept as written
                out.append(text[start : end + 1])
            elif token.lower() in self.strings:
                out.append(self.strings[token.lower()])
            elif token[0].isdigit() or any(c.isspace() for c in token):
                out.append(text[start:end])  # not a string key (e.g. "%1!u!", "50% of 100%")
                i = end
            else:
                raise InfError(self.name, line, f"undefined string key %{token}%")
        return "".join(out)

    def _parse_line(self, line: int, text: str) -> _Line:
        key, value = split_key(text)
        fields = tuple(self._substitute(unquote(f), line) for f in split_fields(value))
        if key is None:
            return _Line(line, None, fields)
        return _Line(line, self._substitute(unquote(key), line), fields)

    # -- lookups ---------------------------------------------------------------------------
    def section(self, name: str) -> tuple[_Line, ...]:
        return self.sections.get(normalize_section(name, self.arch), ())

    def has(self, name: str) -> bool:
        return normalize_section(name, self.arch) in self.sections

    def values(self, section: str, key: str) -> list[_Line]:
        k = key.lower()
        return [ln for ln in self.section(section) if ln.key is not None and ln.key.lower() == k]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        if not found:
            return None
        text = ",".join(f.strip() for f in found[0].fields).strip()
        return text or None

    def int_field(self, line: int, fields: list[str], index: int, what: str) -> int | None:
        """Field ``index`` as a decimal or ``0x`` hex number; None if empty or missing."""
        text = fields[index].strip() if index < len(fields) else ""
        if not text:
            return None
        value = parse_int(text)
        if value is None:
            raise InfError(self.name, line, f"{what}: not a number: {text!r}")
        return value


def _is_strings(key: str) -> bool:
    return key == "strings" or key.startswith("strings.")


def _models_section(inf: _Inf, base: str, decorations: list[str]) -> str | None:
    best: tuple[tuple[int, ...], str] | None = None
    for decoration in decorations:
        rank = decoration_rank(decoration, inf.arch)
        candidate = f"{base}.{decoration}"
        if rank is not None and inf.has(candidate) and (best is None or rank > best[0]):
            best = (rank, candidate)
    if best is not None:
        return best[1]
    return base if inf.has(base) else None


def _install_section(inf: _Inf, base: str) -> str:
    candidates = (f"{base}.NT{inf.arch}", f"{base}.NT", base)
    for candidate in candidates:
        if inf.has(candidate):
            return candidate
    for candidate in candidates:  # lenient: the install section itself is missing
        if inf.has(f"{candidate}.Services") or inf.has(f"{candidate}.HW"):
            return candidate
    return base


def _addreg_dword(inf: _Inf, sections: list[str], subkey: str, value_name: str) -> int | None:
    """The last REG_DWORD ``HKR,<subkey>,<value_name>`` written by these AddReg sections."""
    result: int | None = None
    for section in sections:
        for line in inf.section(section):
            fields = list(line.fields) if line.key is None else [line.key, *line.fields]
            if len(fields) < 3 or fields[0].strip().upper() != "HKR":
                continue
            if fields[1].strip().strip("\\").lower() != subkey.lower():
                continue
            if fields[2].strip().lower() != value_name.lower():
                continue
            flags = inf.int_field(line.line, fields, 3, "AddReg flags") or 0
            if flags & _ADDREG_DELVAL or flags & _ADDREG_TYPE_MASK != _REG_DWORD:
                continue
            value = inf.int_field(line.line, fields, 4, value_name)
            if value is None:
                raise InfError(inf.name, line.line, f"{value_name}: REG_DWORD without a value")
            result = value
    return result


def _addreg_sections(inf: _Inf, section: str) -> list[str]:
    return [f.strip() for ln in inf.values(section, "AddReg") for f in ln.fields if f.strip()]


def _services(inf: _Inf, chosen: str) -> tuple[InfService, ...]:
    function: list[InfService] = []
    others: list[InfService] = []
    for line in inf.values(f"{chosen}.Services", "AddService"):
        name = line.first().strip()
        if not name:  # a null service ("AddService = ,0x2,"): the device runs raw
            continue
        flags = inf.int_field(line.line, list(line.fields), 1, "AddService flags") or 0
        install = line.fields[2].strip() if len(line.fields) > 2 else ""
        binary = inf.value(install, "ServiceBinary") if install else None
        dma = None
        if install:
            dma = _addreg_dword(
                inf, _addreg_sections(inf, install), "Parameters", "DmaRemappingCompatible"
            )
        service = InfService(name, binary, dma)
        (function if flags & SPSVCINST_ASSOCSERVICE else others).append(service)
    return (*function, *others)


def _dma_management(inf: _Inf, chosen: str) -> DmaManagement:
    sections = _addreg_sections(inf, f"{chosen}.HW")
    return DmaManagement(
        remapping_supported=_addreg_dword(inf, sections, "DMA Management", "RemappingSupported"),
        remapping_flags=_addreg_dword(inf, sections, "DMA Management", "RemappingFlags"),
    )


def _models(inf: _Inf) -> tuple[InfModel, ...]:
    models: list[InfModel] = []
    for entry in inf.section("Manufacturer"):
        fields = [f.strip() for f in entry.fields]
        if not fields or not fields[0]:
            continue
        section = _models_section(inf, fields[0], [f for f in fields[1:] if f])
        if section is None:
            continue
        for line in inf.section(section):
            if line.key is None or not line.first().strip():
                continue
            base = line.first().strip()
            chosen = _install_section(inf, base)
            models.append(
                InfModel(
                    description=line.key.strip(),
                    hardware_ids=tuple(f.strip() for f in line.fields[1:] if f.strip()),
                    install_section=base,
                    services=_services(inf, chosen),
                    dma_management=_dma_management(inf, chosen),
                )
            )
    return tuple(models)


def _catalog(inf: _Inf) -> str | None:
    for key in (f"CatalogFile.NT{inf.arch}", "CatalogFile.NT", "CatalogFile"):
        found = inf.value("Version", key)
        if found is not None:
            return found
    return None


def parse_inf(data: bytes, name: str = "<inf>", arch: str = "amd64") -> InfInfo:
    """Read the bytes of an INF file; ``name`` is used in error messages."""
    inf = _Inf(data, name, arch)
    class_name = inf.value("Version", "Class")
    class_guid = inf.value("Version", "ClassGuid")
    graphics = (class_guid or "").strip().lower() == GRAPHICS_CLASS_GUID or (
        (class_name or "").lower() == "display"
    )
    return InfInfo(
        class_name=class_name,
        class_guid=class_guid,
        graphics=graphics,
        provider=inf.value("Version", "Provider"),
        driver_ver=inf.value("Version", "DriverVer"),
        catalog_file=_catalog(inf),
        models=_models(inf),
    )


def read_inf_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an INF file, at most `MAX_INF_BYTES` (``OSError`` if it cannot be opened).

    At most the limit plus one byte is read, so a huge file or a device such as /dev/zero is
    refused (``InfError`` naming the file and the limit) without filling memory."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_INF_BYTES + 1)
    if len(data) > MAX_INF_BYTES:
        raise InfError(
            os.fspath(path),
            None,
            f"larger than {MAX_INF_BYTES} bytes, the limit for an INF file; not read",
        )
    return data


def read_inf(path: str | os.PathLike[str], arch: str = "amd64") -> InfInfo:
    """Read an INF file from disk (``OSError`` if it cannot be opened, ``InfError`` if it is
    malformed or larger than `MAX_INF_BYTES`)."""
    return parse_inf(read_inf_bytes(path), os.fspath(path), arch)


def package_member(inf: Path, name: str) -> Path:
    """The file `name` that the INF `inf` names (``/`` or ``\\`` separators), which must be
    inside the package folder (the INF's folder): a drive, an absolute path, ``..`` or a
    symbolic link leading out of the folder is an ``InfError``; the file is never opened."""
    posix = name.replace("\\", "/")
    outside = f"names {name!r}, which is outside the package folder {inf.parent}"
    if PureWindowsPath(name).drive or posix.startswith("/"):
        raise InfError(str(inf), None, outside)
    path = inf.parent.joinpath(*PurePosixPath(posix).parts)
    if not path.resolve().is_relative_to(inf.parent.resolve()):
        raise InfError(str(inf), None, outside)
    return path


def package_paths(inf: Path, arch: str = "amd64") -> list[Path]:
    """The INF, every ``[SourceDisksFiles]`` file and the catalog (if present) of the package,
    each checked to be inside the package folder (`package_member`) before anything reads it.
    ``OSError`` if the INF cannot be read, ``InfError`` for anything wrong in the package."""
    data = read_inf_bytes(inf)
    info = parse_inf(data, str(inf), arch)
    files = [inf]
    for rel in source_disks_files(data, str(inf), arch):
        path = package_member(inf, rel)
        if not path.is_file():
            raise InfError(
                str(inf), None, f"[SourceDisksFiles] lists {rel!r}, which is not in {inf.parent}"
            )
        files.append(path)
    if info.catalog_file:
        catalog = package_member(inf, info.catalog_file)
        if catalog.is_file() and catalog not in files:
            files.append(catalog)
    return files


def source_disks_files(data: bytes, name: str = "<inf>", arch: str = "amd64") -> tuple[str, ...]:
    """The package's files listed in ``[SourceDisksFiles]`` and ``[SourceDisksFiles.<arch>]``,
    relative to the INF's folder with ``/`` separators (the disk's path from
    ``[SourceDisksNames]``, then the file's subdir), in file order without duplicates."""
    inf = _Inf(data, name, arch)
    disks: dict[str, str] = {}
    for section in ("SourceDisksNames", f"SourceDisksNames.{arch}"):
        for ln in inf.section(section):
            if ln.key is not None:
                disks[ln.key.strip()] = ln.fields[3].strip() if len(ln.fields) > 3 else ""
    found: dict[str, None] = {}
    for section in ("SourceDisksFiles", f"SourceDisksFiles.{arch}"):
        for ln in inf.section(section):
            file = (ln.key if ln.key is not None else ln.first()).strip()
            fields = list(ln.fields) if ln.key is not None else []
            disk = disks.get(fields[0].strip(), "") if fields else ""
            subdir = fields[1].strip() if len(fields) > 1 else ""
            raw = [p.replace("\\", "/") for p in (disk, subdir, file) if p]
            # A disk path starts with a backslash and is relative to the root of the
            # distribution (the package folder): `1 = %Disk%,,,\x86` ("INF SourceDisksNames
            # Section", https://learn.microsoft.com/windows-hardware/drivers/install/inf-sourcedisksnames-section).
            # Only a file or subdir that is itself rooted is kept rooted (refused later).
            own = [p.replace("\\", "/") for p in (subdir, file) if p]
            rooted = "/" if any(p.startswith("/") for p in own) else ""
            parts = [p.strip("/") for p in raw]
            if file:
                found.setdefault(rooted + "/".join(p for p in parts if p), None)
    return tuple(found)
