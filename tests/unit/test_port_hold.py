"""PortHold and start_on (harness/virtual_lab/port_hold.py) with real sockets on 127.0.0.1."""

from __future__ import annotations

import errno
import socket

import pytest

from harness.virtual_lab.port_hold import PortHold, start_on

HOST = "127.0.0.1"


def _listener(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen()
    return sock


def _free_port() -> int:
    first = _listener()
    port: int = first.getsockname()[1]
    first.close()
    return port


def _refused(port: int) -> bool:
    with socket.socket() as client:
        client.settimeout(5)
        return client.connect_ex((HOST, port)) == errno.ECONNREFUSED


def test_a_held_port_refuses_connections_and_other_binds() -> None:
    port = _free_port()
    hold = PortHold.take(HOST, port)
    assert hold is not None and hold.held
    try:
        assert _refused(port)
        with socket.socket() as other, pytest.raises(OSError) as info:
            other.bind((HOST, port))
        assert info.value.errno == errno.EADDRINUSE
    finally:
        hold.release()
    assert not hold.held
    with socket.socket() as other:
        other.bind((HOST, port))  # free again


def test_the_endpoint_listens_while_the_hold_is_there_then_the_hold_goes() -> None:
    port = _free_port()
    hold = PortHold.take(HOST, port)
    seen: list[bool] = []

    def start() -> socket.socket:
        seen.append(hold is not None and hold.held)
        return _listener(port)

    server = start_on(hold, start)
    try:
        assert seen == [True]  # Linux: no moment when the port was free
        assert hold is not None and not hold.held
        with socket.create_connection((HOST, port), timeout=5):
            pass
    finally:
        server.close()


def test_where_the_listener_cannot_share_the_port_the_hold_goes_first() -> None:
    port = _free_port()
    hold = PortHold.take(HOST, port)
    calls: list[bool] = []

    def start() -> socket.socket:
        calls.append(hold is not None and hold.held)
        if hold is not None and hold.held:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return _listener(port)

    server = start_on(hold, start)
    server.close()
    assert calls == [True, False]


def test_a_port_another_socket_listens_on_cannot_be_held() -> None:
    busy = _listener()
    try:
        assert PortHold.take(HOST, busy.getsockname()[1]) is None
    finally:
        busy.close()


def test_another_failure_to_start_is_raised_and_the_hold_goes() -> None:
    hold = PortHold.take(HOST, 0)
    assert hold is not None

    def start() -> None:
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(OSError, match="Permission denied"):
        start_on(hold, start)
    assert not hold.held
