"""A throwaway PostgreSQL server in a directory, for the coordinator's tests and benchmark.

It finds `initdb`, `pg_ctl` and `postgres` on PATH or in Debian's /usr/lib/postgresql/*/bin
(the `postgresql` package does not put them on PATH; tools/system-deps.sh installs it),
initialises a cluster (superuser `postgres`, trusted on the Unix socket only; TCP on 127.0.0.1
needs a SCRAM password), starts it listening on a Unix socket in the directory and on a free
127.0.0.1 port, and stops it. PostgreSQL refuses to run as root: as root, the cluster belongs
to `nobody` and the server runs as `nobody` (runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


def find_bin(name: str) -> str:
    """`name` on PATH, else the newest Debian /usr/lib/postgresql/N/bin/name."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(
            f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin: install PostgreSQL "
            "(Debian: apt-get install postgresql; or sh tools/system-deps.sh)"
        )
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScratchServer:
    """A running throwaway cluster: `socket_dir` and `port` to reach it."""

    root: Path
    port: int
    as_user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def superuser_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def _run(self, argv: list[str], timeout: float = START_TIMEOUT_S) -> None:
        if self.as_user:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    @property
    def ca_file(self) -> Path:
        """The CA of the server's certificate (PEM), when started with `tls=True`."""
        return self.root / "ca.pem"

    @classmethod
    def start(cls, parent: Path | None = None, *, tls: bool = False) -> ScratchServer:
        root = Path(tempfile.mkdtemp(prefix="harness-pg-", dir=parent))
        root.chmod(0o755)
        as_user = "nobody" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        server = cls(root, _free_port(), as_user)
        server.socket_dir.mkdir()
        if as_user:
            shutil.chown(server.socket_dir, as_user)
            shutil.chown(root, as_user)
        server._run(
            [
                find_bin("initdb"),
                "-D",
                str(server.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",  # whatever LANG says (a locale CI never generated, say)
                "--no-sync",
            ]
        )
        options = (
            f"-k {server.socket_dir} -h 127.0.0.1 -p {server.port} -F "
            "-c max_connections=60 -c shared_buffers=16MB"
        )
        if tls:
            cert, key = make_certificates(root, server.ca_file)
            if as_user:
                shutil.chown(cert, as_user)
                shutil.chown(key, as_user)
            options += f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"
        server._run(
            [
                find_bin("pg_ctl"),
                "-D",
                str(server.data),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "start",
            ]
        )
        return server

    def stop(self) -> None:
        try:
            self._run([find_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def make_certificates(root: Path, ca_file: Path) -> tuple[Path, Path]:
    """A throwaway CA (written to `ca_file`) and a server certificate for 127.0.0.1 and
    localhost signed by it; the certificate and key paths (key 0600)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness scratch CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = root / "server.crt"
    key_file = root / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file
