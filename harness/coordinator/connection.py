"""Connections to the coordinator: parameters from the lab file, the password from its
reference, TCP keepalives on both ends, and errors that never carry the password.

A lease is a session-level advisory lock, so the server frees it when the holder's connection
ends. A killed holder's kernel closes the socket and the server sees that at once; a holder cut
off by the network (or powered off) is noticed by the *server's* keepalives, which this module
sets per session (`tcp_keepalives_idle/interval/count`) to the lab's figures: the lease is free
within `keepalive_bound_s()` of the partition. The client's libpq keepalives get the same
figures, so a holder notices a lost server within the same bound.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.lab_models import Coordinator
from harness.errors import ConfigError, InfrastructureError

try:
    import psycopg
except ImportError:  # the `coordinator` extra is not installed
    psycopg = None  # type: ignore[assignment]

INSTALL_HINT = "pip install 'dma-lab-harness[coordinator]'"
APPLICATION_NAME = "dma-lab-harness"


def keepalive_bound_s(cfg: Coordinator) -> int:
    """Seconds after which a silent peer is declared gone: idle + interval x count."""
    return cfg.keepalives_idle_s + cfg.keepalives_interval_s * cfg.keepalives_count


@dataclass(frozen=True)
class Endpoint:
    """The lab's coordinator: its config and the directory relative paths are taken from."""

    cfg: Coordinator
    base_dir: Path

    def params(self) -> dict[str, Any]:
        """libpq keyword parameters, the password included (never log this dictionary)."""
        p: dict[str, Any] = {
            "conninfo": self.cfg.url,
            "sslmode": self.cfg.sslmode,
            "connect_timeout": self.cfg.connect_timeout_s,
            "keepalives": 1,
            "keepalives_idle": self.cfg.keepalives_idle_s,
            "keepalives_interval": self.cfg.keepalives_interval_s,
            "keepalives_count": self.cfg.keepalives_count,
            "tcp_user_timeout": keepalive_bound_s(self.cfg) * 1000,
            "application_name": APPLICATION_NAME,
        }
        if self.cfg.user:
            p["user"] = self.cfg.user
        if self.cfg.sslrootcert is not None:
            path = self.cfg.sslrootcert.expanduser()
            p["sslrootcert"] = str(path if path.is_absolute() else self.base_dir / path)
        if self.cfg.password is not None:
            p["password"] = self.cfg.password.resolve(self.base_dir)
        return p

    def describe(self) -> str:
        """The URL and TLS mode, for messages (the URL never holds a password: lab_models)."""
        return f"{self.cfg.url} (sslmode {self.cfg.sslmode})"


def require_psycopg() -> None:
    if psycopg is None:
        raise ConfigError(f"the lab has a coordinator, which needs psycopg: {INSTALL_HINT}")


def connect(endpoint: Endpoint) -> psycopg.Connection[Any]:
    """An autocommit connection with the lab's keepalives on the server side too."""
    require_psycopg()
    params = endpoint.params()
    secret = params.get("password")
    try:
        conn = psycopg.connect(autocommit=True, **params)
    except psycopg.Error as exc:
        raise InfrastructureError(
            f"coordinator {endpoint.describe()}: cannot connect: {scrub(str(exc), secret)}"
        ) from None
    cfg = endpoint.cfg
    with conn.cursor() as cur:  # server side: free our locks within the bound if we vanish
        for name, value in (
            ("tcp_keepalives_idle", cfg.keepalives_idle_s),
            ("tcp_keepalives_interval", cfg.keepalives_interval_s),
            ("tcp_keepalives_count", cfg.keepalives_count),
            ("tcp_user_timeout", keepalive_bound_s(cfg) * 1000),
        ):
            cur.execute("SELECT set_config(%s, %s, false)", (name, str(value)))
    return conn


def scrub(text: str, secret: str | None) -> str:
    """`text` with the secret replaced (a driver message should never hold it; made sure)."""
    return text.replace(secret, "***") if secret else text


def who() -> dict[str, Any]:
    """This process as a holder or waiter: host, OS user, pid."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container without passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {"host": socket.gethostname(), "os_user": user, "pid": os.getpid()}
