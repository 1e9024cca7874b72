"""SFTP helpers of the SSH transport: Windows paths as Windows OpenSSH's SFTP expects, folders, hashes.

>>> windows_sftp_path("C:\\\\harness\\\\x.inf")
'/C:/harness/x.inf'

Windows refuses some names that a POSIX SFTP server accepts: the reserved device names (CON, PRN,
AUX, NUL, COM1-9, LPT1-9, with any extension), names ending in a dot or a space, and the
characters `< > : " | ? *` (`:` would name an NTFS alternate data stream). Such a path is a
`ConfigError` before anything is sent (Naming Files, Paths, and Namespaces:
https://learn.microsoft.com/windows/win32/fileio/naming-a-file), not an SFTP failure
mid-upload; names are case-insensitive on the host, so `C:\\Harness` is `C:\\harness`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import stat

import paramiko

from harness.errors import ConfigError, InfrastructureError
from harness.remote.deadline import Deadline

_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_BAD_CHARS = re.compile(r'[<>:"|?*\x00-\x1f]')


def windows_sftp_path(remote: str) -> str:
    """`C:\\harness\\x.inf` -> `/C:/harness/x.inf` (the form Windows OpenSSH's SFTP expects);
    a name Windows cannot create is a ConfigError (see the module doc)."""
    path = remote.replace("\\", "/")
    if len(path) >= 2 and path[1] == ":":
        path = "/" + path
    names = path.split("/")[2:] if path[2:3] == ":" else path.split("/")
    for name in (n for n in names if n not in ("", ".", "..")):
        why = _invalid_name(name)
        if why is not None:
            raise ConfigError(f"{remote!r} cannot be created on Windows: {why}")
    return path


def _invalid_name(name: str) -> str | None:
    if _RESERVED.match(name):
        return f"{name!r} is a reserved device name"
    if name.endswith((".", " ")):
        return f"{name!r} ends with a dot or a space"
    if _BAD_CHARS.search(name):
        return f"{name!r} contains a character Windows does not allow in a name"
    return None


def makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    """Create `folder` and its missing parents over SFTP."""
    missing: list[str] = []
    while folder and folder not in ("/", "."):
        try:
            if stat.S_ISDIR(sftp.stat(folder).st_mode or 0):
                break
        except FileNotFoundError:
            missing.append(folder)
            folder = posixpath.dirname(folder)
            continue
        raise InfrastructureError(f"{folder} exists on the host and is not a folder")
    for f in reversed(missing):
        sftp.mkdir(f)


def remote_sha256(sftp: paramiko.SFTPClient, path: str, dl: Deadline) -> str:
    """SHA-256 of a remote file read back over SFTP (the deadline checked per MiB)."""
    h = hashlib.sha256()
    with sftp.open(path, "rb") as f:
        f.prefetch()
        while chunk := f.read(1 << 20):
            h.update(chunk)
            dl.check()
    return h.hexdigest()
