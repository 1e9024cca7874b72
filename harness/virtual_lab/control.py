"""The virtual lab's control endpoint: read the simulated truth and inject faults, over HTTP.

Loopback only, TCP_NODELAY, JSON in and out, and every request needs the lab's random token as
`Authorization: Bearer <token>` (401 otherwise):

    GET    /truth                  every DUT's truth, endpoint and instrument state, faults
    GET    /faults                 the active faults
    GET    /duts/NAME              the DUT machine's truth
    GET    /duts/NAME/operations   the DUT machine's operations log
    POST   /faults                 body: a VirtualFault, e.g. {"kind": "auth-failure", "dut": "tb-01"}
    DELETE /faults                 clear every fault
    POST   /duts/NAME/power        body: {"action": "reboot"}
                                   or {"action": "recovery-key"} (BitLocker recovery)

Errors answer `{"error": "..."}` with 400 (bad input), 401, 404 (unknown path or DUT).
`ControlClient` is the matching client (urllib, with timeouts).

>>> client = ControlClient(endpoints.control.url, endpoints.control.token)   # doctest: +SKIP
>>> client.add_fault({"kind": "refuse-connections", "dut": "tb-01"})         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from pydantic import ValidationError

from harness.config.lab_models import VirtualFault
from harness.errors import InfrastructureError
from harness.virtual_lab.service import Service

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
_MAX_BODY = 64 * 1024
_DUT_PATH = re.compile(r"^/duts/([^/]+)(/operations|/power)?$")


class ControlTarget(Protocol):
    """What the control endpoint drives (the `VirtualLabRuntime`)."""

    def truth(self) -> dict[str, Any]: ...
    def dut_truth(self, dut: str) -> dict[str, Any]: ...
    def operations(self, dut: str) -> list[dict[str, Any]]: ...
    def faults(self) -> list[VirtualFault]: ...
    def add_fault(self, fault: VirtualFault) -> None: ...
    def clear_faults(self) -> None: ...
    def power(self, dut: str, action: str) -> None: ...


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, target: ControlTarget, token: str) -> None:
        self.target = target
        self.token = token
        super().__init__((LOOPBACK, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles in a thread
    timeout = 30.0

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            self._authorize()
            status, body = self._route(method, self.path.split("?", 1)[0].rstrip("/"))
        except _HttpError as exc:
            status, body = exc.status, {"error": exc.message}
        except Exception as exc:  # a bug must answer, not hang the client
            log.exception("control: %s %s failed", method, self.path)
            status, body = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorize(self) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.token.encode()
        )
        if not ok:
            raise _HttpError(401, "missing or wrong 'Authorization: Bearer <token>'")

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise _HttpError(400, "request body too large")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise _HttpError(400, f"the body is not JSON: {exc}") from None

    def _route(self, method: str, path: str) -> tuple[int, Any]:
        target = self.server.target
        if path == "/truth" and method == "GET":
            return 200, target.truth()
        if path == "/faults":
            if method == "GET":
                return 200, [f.model_dump(mode="json", exclude_none=True) for f in target.faults()]
            if method == "DELETE":
                target.clear_faults()
                return 200, {"cleared": True}
            if method == "POST":
                fault = _parse_fault(self._json_body())
                try:
                    target.add_fault(fault)
                except ValueError as exc:
                    raise _HttpError(400, str(exc)) from None
                return 201, fault.model_dump(mode="json", exclude_none=True)
        m = _DUT_PATH.match(path)
        if m is not None:
            dut, sub = m.group(1), m.group(2)
            try:
                if sub is None and method == "GET":
                    return 200, target.dut_truth(dut)
                if sub == "/operations" and method == "GET":
                    return 200, target.operations(dut)
                if sub == "/power" and method == "POST":
                    body = self._json_body()
                    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
                        raise _HttpError(400, 'expected {"action": "reboot"}')
                    target.power(dut, body["action"])
                    return 202, {"dut": dut, "action": body["action"]}
            except KeyError as exc:
                raise _HttpError(404, str(exc.args[0] if exc.args else exc)) from None
            except ValueError as exc:
                raise _HttpError(400, str(exc)) from None
        raise _HttpError(404, f"no such resource: {method} {path}")


def _parse_fault(body: Any) -> VirtualFault:
    if not isinstance(body, dict):
        raise _HttpError(400, 'expected a JSON object such as {"kind": "auth-failure"}')
    try:
        return VirtualFault.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise _HttpError(400, f"invalid fault: {problems}") from None


class ControlServer(Service):
    """The control endpoint of one lab, on 127.0.0.1 and a free port."""

    def __init__(self, target: ControlTarget, token: str) -> None:
        self._target = target
        self._token = token
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ControlServer:
        if self._server is not None:
            return self
        self._server = _Server(self._target, self._token)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="vlab-control",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)


class ControlError(InfrastructureError):
    """The control endpoint refused a request (`status` is the HTTP status, 0 if unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"control endpoint: {status} {message}" if status else message)
        self.status = status
        self.message = message


class ControlClient:
    """Client of the control endpoint: `ControlClient(url, token, timeout_s=10)`."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def truth(self) -> dict[str, Any]:
        return self._call("GET", "/truth")

    def dut(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/duts/{name}")

    def operations(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/duts/{name}/operations")

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def add_fault(self, fault: VirtualFault | dict[str, Any]) -> dict[str, Any]:
        body = (
            fault.model_dump(mode="json", exclude_none=True)
            if isinstance(fault, VirtualFault)
            else fault
        )
        return self._call("POST", "/faults", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def reboot(self, name: str) -> None:
        self._call("POST", f"/duts/{name}/power", {"action": "reboot"})

    def enter_recovery_key(self, name: str) -> None:
        """Type the recovery key at the DUT's BitLocker recovery screen (400 if not there)."""
        self._call("POST", f"/duts/{name}/power", {"action": "recovery-key"})

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                raw = exc.read()
            try:
                message = str(json.loads(raw).get("error", raw.decode(errors="replace")))
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace")
            raise ControlError(exc.code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ControlError(0, f"control endpoint {self.url} unreachable: {exc}") from None
