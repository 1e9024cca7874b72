"""SFTP helpers of the SSH transport: Windows paths as Windows OpenSSH's SFTP expects, folders, hashes.

>>> windows_sftp_path("C:\\\\harness\\\\x.inf")
'/C:/harness/x.inf'
"""

from __future__ import annotations

import hashlib
import posixpath
import stat

import paramiko

from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline


def windows_sftp_path(remote: str) -> str:
    """`C:\\harness\\x.inf` -> `/C:/harness/x.inf` (the form Windows OpenSSH's SFTP expects)."""
    path = remote.replace("\\", "/")
    if len(path) >= 2 and path[1] == ":":
        path = "/" + path
    return path


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
