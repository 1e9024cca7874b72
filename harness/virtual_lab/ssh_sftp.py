"""The virtual lab's SFTP subsystem: Windows OpenSSH's view of an NTFS volume, rooted per DUT.

Paths map into the DUT's root (`sftp_root`):

    C:\\harness\\pkg\\x.inf, C:/harness/pkg/x.inf, /C:/harness/pkg/x.inf -> <root>/C/harness/pkg/x.inf
    /harness/x (no drive)                                        -> <root>/C/harness/x
    x.inf (relative: the user's home, C:\\Users\\<user>)         -> <root>/C/Users/<user>/x.inf

Drive letters are upper-cased, `..` never leaves the drive, and paths are reported back to the
client the way Windows OpenSSH does (`/C:/harness/x`). As on NTFS through Win32, names are
case-insensitive and case-preserving (`C:\\Harness` is the existing `C:\\harness`), and a name
Win32 cannot create is refused: the reserved device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9,
with or without an extension), a trailing dot or space, and `< > : " | ? *` or control
characters (`:` would name an NTFS alternate data stream).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import asyncssh

_DRIVE = re.compile(r"^/?([A-Za-z]):(/.*)?$")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_BAD_CHARS = re.compile(r'[<>:"|?*\x00-\x1f]')


def _account(username: str) -> str:
    """`lab\\tester` and `tester@lab` both log on as `tester` (as Windows OpenSSH accepts)."""
    return username.rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def invalid_name(name: str) -> str | None:
    """Why Win32 would refuse `name` as a file or folder name, or None if it is fine."""
    if _RESERVED.match(name):
        return f"{name!r} is a reserved device name"
    if name.endswith((".", " ")):
        return f"{name!r} ends with a dot or a space"
    if _BAD_CHARS.search(name):
        return f"{name!r} contains a character Windows does not allow in a name"
    return None


def windows_to_local(root: Path, path: str, username: str = "user") -> Path:
    """Map a Windows-style or SFTP path to the file under the DUT's `root` (see module doc)."""
    text = path.replace("\\", "/")
    m = _DRIVE.match(text)
    if m:
        drive, rest = m.group(1).upper(), m.group(2) or "/"
    elif text.startswith("/"):
        drive, rest = "C", text
    else:
        drive, rest = "C", f"/Users/{_account(username)}/{text}"
    norm = posixpath.normpath("/" + rest.lstrip("/")).lstrip("/")
    return Path(root) / drive / norm if norm and norm != "." else Path(root) / drive


def fold_case(root: Path, local: Path) -> Path:
    """`local` with each existing component spelled as on disk (NTFS is case-insensitive)."""
    try:
        parts = local.relative_to(root).parts
    except ValueError:
        return local
    here = Path(root)
    for i, part in enumerate(parts):
        if (here / part).exists() or not here.is_dir():
            here = here / part
            continue
        low = part.lower()
        match = next((e.name for e in here.iterdir() if e.name.lower() == low), None)
        if match is None:
            return here.joinpath(*parts[i:])
        here = here / match
    return here


class LabSftp(asyncssh.SFTPServer):
    """asyncssh's SFTP server with Windows path mapping and NTFS naming rules."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: Path) -> None:
        self._root = Path(root).resolve()
        self._user = str(chan.get_extra_info("username") or "user")
        super().__init__(chan)

    def map_path(self, path: bytes) -> bytes:
        text = path.decode("utf-8", "surrogateescape") or "."
        local = windows_to_local(self._root, text, self._user)
        rel = local.relative_to(self._root).parts[1:]  # the drive letter is not a name
        for name in rel:
            why = invalid_name(name)
            if why is not None:
                raise asyncssh.SFTPFailure(
                    f"The filename, directory name, or volume label syntax is incorrect: {why}"
                )
        return bytes(fold_case(self._root, local))

    def reverse_map_path(self, path: bytes) -> bytes:
        local = Path(path.decode("utf-8", "surrogateescape"))
        try:
            rel = local.relative_to(self._root)
        except ValueError as exc:
            raise asyncssh.SFTPNoSuchFile("File not found") from exc
        if not rel.parts:
            return b"/"
        drive, *rest = rel.parts
        return ("/" + drive + ":/" + "/".join(rest)).encode("utf-8", "surrogateescape")
