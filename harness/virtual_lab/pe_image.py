"""A minimal PE32+ kernel-driver image for the virtual lab's driver packages.

The virtual lab's driver store checks Authenticode signatures for real, so its test packages ship
real `.sys` files: small but valid PE32+ images (AMD64, subsystem NATIVE, not a DLL) with a
`.text` section holding `DriverEntry` (`xor eax, eax; ret`: STATUS_SUCCESS) and an `.rdata`
section holding the driver's name, so every driver hashes differently. Headers follow the PE/COFF
specification: file alignment 0x200, section alignment 0x1000, 16 data directories, a correct
SizeOfImage/SizeOfHeaders and the image checksum (the ImageHlp `CheckSumMappedFile` algorithm).
The output is a pure function of the name (TimeDateStamp 0), so a rebuilt image is identical.

>>> build_driver_image(tmp / "dmalab_nvme.sys", name="dmalab_nvme")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

MACHINE_AMD64 = 0x8664
SUBSYSTEM_NATIVE = 1
IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002
IMAGE_FILE_LARGE_ADDRESS_AWARE = 0x0020
IMAGE_FILE_DLL = 0x2000
IMAGE_DLLCHARACTERISTICS_NX_COMPAT = 0x0100
PE32_PLUS_MAGIC = 0x020B

FILE_ALIGNMENT = 0x200
SECTION_ALIGNMENT = 0x1000
IMAGE_BASE = 0x0000_0001_4000_0000  # the default base of x64 drivers (link /DRIVER)
NUMBER_OF_DATA_DIRECTORIES = 16

_SCN_CODE_EXECUTE_READ = 0x6000_0020  # CNT_CODE | MEM_EXECUTE | MEM_READ
_SCN_INITIALIZED_DATA_READ = 0x4000_0040  # CNT_INITIALIZED_DATA | MEM_READ

_E_LFANEW = 0x80
# The classic DOS stub: print the message and exit (as MSVC's linker emits it).
_DOS_STUB = (
    bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
    + b"This program cannot be run in DOS mode.\r\r\n$"
).ljust(_E_LFANEW - 0x40, b"\0")
_DRIVER_ENTRY = bytes.fromhex("31c0c3")  # xor eax, eax ; ret  -> STATUS_SUCCESS
_OPTIONAL_HEADER_SIZE = 112 + 8 * NUMBER_OF_DATA_DIRECTORIES  # PE32+: 240 bytes
_CHECKSUM_OFFSET = _E_LFANEW + 4 + 20 + 64  # OptionalHeader.CheckSum


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class _Section:
    name: bytes
    data: bytes
    characteristics: int


def pe_checksum(image: bytes, checksum_offset: int = _CHECKSUM_OFFSET) -> int:
    """The PE image checksum: 16-bit one's-complement-style sum of the file with the CheckSum
    field counted as zero, folded to 16 bits, plus the file length."""
    data = image[:checksum_offset] + b"\0\0\0\0" + image[checksum_offset + 4 :]
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"<{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (total + len(image)) & 0xFFFF_FFFF


def driver_image_bytes(name: str) -> bytes:
    """The bytes of the driver image for `name` (see the module docstring)."""
    rdata = name.encode("utf-8") + b"\0" + name.encode("utf-16-le") + b"\0\0"
    if len(rdata) > FILE_ALIGNMENT:
        raise ValueError(f"driver name too long for the image: {name!r}")
    sections = [
        _Section(b".text", _DRIVER_ENTRY, _SCN_CODE_EXECUTE_READ),
        _Section(b".rdata", rdata, _SCN_INITIALIZED_DATA_READ),
    ]
    header_len = _E_LFANEW + 4 + 20 + _OPTIONAL_HEADER_SIZE + 40 * len(sections)
    size_of_headers = _align(header_len, FILE_ALIGNMENT)

    table = b""
    body = b""
    raw_pointer = size_of_headers
    rva = SECTION_ALIGNMENT
    for section in sections:
        raw_size = _align(len(section.data), FILE_ALIGNMENT)
        table += struct.pack(
            "<8sIIIIIIHHI",
            section.name,
            len(section.data),  # VirtualSize
            rva,  # VirtualAddress
            raw_size,  # SizeOfRawData
            raw_pointer,  # PointerToRawData
            0,  # PointerToRelocations
            0,  # PointerToLinenumbers
            0,  # NumberOfRelocations
            0,  # NumberOfLinenumbers
            section.characteristics,
        )
        body += section.data.ljust(raw_size, b"\0")
        raw_pointer += raw_size
        rva += _align(len(section.data), SECTION_ALIGNMENT)
    size_of_image = rva
    text_rva = SECTION_ALIGNMENT  # the first section

    coff = struct.pack(
        "<HHIIIHH",
        MACHINE_AMD64,
        len(sections),
        0,  # TimeDateStamp: 0 keeps the image deterministic
        0,  # PointerToSymbolTable
        0,  # NumberOfSymbols
        _OPTIONAL_HEADER_SIZE,
        IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LARGE_ADDRESS_AWARE,
    )
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        PE32_PLUS_MAGIC,
        14,  # MajorLinkerVersion
        0,  # MinorLinkerVersion
        FILE_ALIGNMENT,  # SizeOfCode
        FILE_ALIGNMENT,  # SizeOfInitializedData
        0,  # SizeOfUninitializedData
        text_rva,  # AddressOfEntryPoint: DriverEntry
        text_rva,  # BaseOfCode
        IMAGE_BASE,
        SECTION_ALIGNMENT,
        FILE_ALIGNMENT,
        10,  # MajorOperatingSystemVersion
        0,  # MinorOperatingSystemVersion
        10,  # MajorImageVersion
        0,  # MinorImageVersion
        10,  # MajorSubsystemVersion
        0,  # MinorSubsystemVersion
        0,  # Win32VersionValue
        size_of_image,
        size_of_headers,
        0,  # CheckSum: filled in below
        SUBSYSTEM_NATIVE,
        IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
        0x40000,  # SizeOfStackReserve
        0x1000,  # SizeOfStackCommit
        0x100000,  # SizeOfHeapReserve
        0x1000,  # SizeOfHeapCommit
        0,  # LoaderFlags
        NUMBER_OF_DATA_DIRECTORIES,
    )
    optional += b"\0" * (8 * NUMBER_OF_DATA_DIRECTORIES)  # no imports, relocs, certificates
    assert len(optional) == _OPTIONAL_HEADER_SIZE

    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<HHHHHHHHH", dos, 2, 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0)
    struct.pack_into("<H", dos, 0x18, 0x40)  # e_lfarlc
    struct.pack_into("<I", dos, 0x3C, _E_LFANEW)
    headers = bytes(dos) + _DOS_STUB + b"PE\0\0" + coff + optional + table
    image = bytearray(headers.ljust(size_of_headers, b"\0") + body)
    struct.pack_into("<I", image, _CHECKSUM_OFFSET, pe_checksum(bytes(image)))
    return bytes(image)


def build_driver_image(path: Path, *, name: str) -> None:
    """Write the driver image for `name` to `path` (atomically: a reader never sees half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(driver_image_bytes(name))
    os.replace(tmp, path)
