"""SSH keys for the virtual lab: a persistent ed25519 host key per DUT and test user keys.

The host key is generated once into `host_key_dir` and reused on every start, so a known_hosts
entry written for a DUT stays valid across "reboots" (restarts, even on a new port). The private
key files are written 0600 in OpenSSH format, which both asyncssh and paramiko read.

>>> hk = HostKey.ensure(tmp)                                    # doctest: +SKIP
>>> hk.known_hosts_line("127.0.0.1", 2222)                      # doctest: +SKIP
'[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nza...'
>>> user = UserKey.generate(tmp / "id_ed25519")                 # doctest: +SKIP
>>> user.authorized_key                                         # doctest: +SKIP
'ssh-ed25519 AAAAC3Nza... lab-user'
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

HOST_KEY_NAME = "ssh_host_ed25519_key"


def _write_private(key: asyncssh.SSHKey, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key("openssh"))
    os.replace(tmp, path)


def fingerprint_sha256(public_blob: bytes) -> str:
    """OpenSSH's `SHA256:...` fingerprint of a public key blob (as `ssh-keygen -l` prints)."""
    digest = base64.b64encode(hashlib.sha256(public_blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True)
class HostKey:
    """A DUT's ed25519 host key, persisted as `<dir>/ssh_host_ed25519_key`."""

    path: Path
    key: asyncssh.SSHKey

    @classmethod
    def ensure(cls, host_key_dir: Path) -> HostKey:
        """Load the key from `host_key_dir`, generating it the first time."""
        path = Path(host_key_dir) / HOST_KEY_NAME
        if path.exists():
            return cls(path, asyncssh.read_private_key(path))
        key = asyncssh.generate_private_key("ssh-ed25519", comment="virtual-lab-dut")
        _write_private(key, path)
        return cls(path, key)

    @property
    def public_line(self) -> str:
        """`ssh-ed25519 AAAA...` without comment."""
        text = self.key.export_public_key("openssh").decode().strip()
        algo, blob = text.split()[:2]
        return f"{algo} {blob}"

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.key.public_data)

    def known_hosts_line(self, host: str, port: int) -> str:
        name = host if port == 22 else f"[{host}]:{port}"
        return f"{name} {self.public_line}"


@dataclass(frozen=True)
class UserKey:
    """A client key pair: `path` (private, OpenSSH format) and its authorized_keys line."""

    path: Path
    authorized_key: str

    @classmethod
    def generate(cls, path: Path, comment: str = "lab-user") -> UserKey:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        _write_private(key, Path(path))
        public = key.export_public_key("openssh").decode().strip()
        Path(str(path) + ".pub").write_text(public + "\n", encoding="ascii")
        return cls(Path(path), public)
