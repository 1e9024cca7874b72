"""A port that a stopped endpoint keeps: bound but never listening, so a connection to it is
refused (as while the endpoint is down) and no other socket on the machine takes the port
before the endpoint listens on it again (a DUT "rebooting" comes back on the same ports).

A port-0 bind and connect()'s ephemeral ports skip a bound port, and a bind to it without
SO_REUSEADDR fails (EADDRINUSE). On Linux the endpoint's listener (SO_REUSEADDR) binds and
listens while the hold is still there, so the port is never free; where a platform refuses
that (EADDRINUSE), `start_on` lets the hold go just before starting the endpoint again.

>>> hold = PortHold.take("127.0.0.1", 50123)                # doctest: +SKIP
>>> start_on(hold, endpoint.start)  # listens on 50123, then lets the hold go  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")

__all__ = ["PortHold", "start_on"]


class PortHold:
    """A TCP port held by a bound, non-listening socket until `release()`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock

    @classmethod
    def take(cls, host: str, port: int) -> PortHold | None:
        """Hold `port`; None (and a warning) if another socket took it already."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            log.warning(
                "port %s:%d could not be held while its endpoint is down: %s", host, port, exc
            )
            return None
        return cls(sock)

    @property
    def held(self) -> bool:
        return self._sock is not None

    def release(self) -> None:
        """Let the port go (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def start_on(hold: PortHold | None, start: Callable[[], _T]) -> _T:
    """`start()` an endpoint on its held port, then let the hold go."""
    try:
        try:
            return start()
        except OSError as exc:
            if hold is None or not hold.held or exc.errno != errno.EADDRINUSE:
                raise
            hold.release()  # this platform lets no listener share a port with the hold
            return start()
    finally:
        if hold is not None:
            hold.release()
