"""Conformance with WS-Management traffic recorded from real Windows servers (the
`wsman-recordings` corpus, found through DMA_HARNESS_CORPORA; see tests/corpora.py).

1. Replay: a small HTTP server on 127.0.0.1 answers the harness's WinRM transport with the
   recorded responses, action by action (RelatesTo rewritten to the request's MessageID; the
   recorded ShellId and CommandId are what the harness then uses). Every Windows Remote Shell
   recording is driven through `WinRMShell.run` (per-call PowerShell over stdin for the one with
   Sends): the harness must accept every response, return the recorded stdout and exit code, or
   turn the recorded fault into an InfrastructureError naming its code; w:TimedOut on a Receive is
   retried, as Windows means it.
2. Faults: every fault response of the corpus (PSRP ones included) is served as the answer to the
   harness's Command: each becomes an InfrastructureError naming the recorded WSManFault code.
3. The virtual lab answers the recorded Create and an unknown-CommandId Receive with the shapes
   Windows uses (actions, fault code), and every recorded Create request, sent to the lab as
   recorded, with the IdleTimeOut the real server echoed.
"""

from __future__ import annotations

import base64
import re
import threading
import xml.etree.ElementTree as ET
from collections import defaultdict, deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness.errors import InfrastructureError
from harness.remote.winrm_transport import WinRMAuth, WinRMSettings, WinRMShell
from tests.corpora import corpus

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
TIMED_OUT = 2150858793


def _messages(path: Path) -> list[dict[str, object]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["messages"])


def _action(envelope: str) -> str:
    m = re.search(r"Action[^>]*>([^<]+)<", envelope)
    return m.group(1).rsplit("/", 1)[-1] if m else ""


def _fault_code(envelope: str) -> int | None:
    m = re.search(r'Code="(\d+)"', envelope)
    return int(m.group(1)) if m and "Fault" in envelope else None


def _status(message: dict[str, object]) -> int:
    error = message.get("transport_error")
    return int(error["code"]) if isinstance(error, dict) and "code" in error else 200  # type: ignore[index]


class Replay:
    """Recorded responses by action, served to whoever asks, in recorded order."""

    def __init__(self, messages: list[dict[str, object]]) -> None:
        self.queues: dict[str, deque[tuple[str, int]]] = defaultdict(deque)
        for m in messages:
            self.queues[_action(str(m["request"]))].append((str(m["response"]), _status(m)))
        self.served: list[str] = []
        self.unanswered: list[str] = []

    def answer(self, request: bytes) -> tuple[bytes, int]:
        text = request.decode("utf-8")
        action = _action(text)
        queue = self.queues.get(action)
        if not queue:
            self.unanswered.append(action)
            body, status = self._synthesized(action), 200
        else:
            body, status = queue.popleft() if len(queue) > 1 else queue[0]
        self.served.append(action)
        message_id = re.search(r"MessageID[^>]*>([^<]+)<", text)
        if message_id:
            body = re.sub(
                r"(<a:RelatesTo>)[^<]*(</a:RelatesTo>)",
                lambda m: m.group(1) + message_id.group(1) + m.group(2),
                body,
            )
        return body.encode("utf-8"), status

    @staticmethod
    def _synthesized(action: str) -> str:
        """An answer for an action the recording does not have (the harness's flow differs):
        the smallest valid one, so the recorded responses after it are still reached."""
        bodies = {
            "Command": "<rsp:CommandResponse><rsp:CommandId>11111111-2222-3333-4444-555555555555"
            "</rsp:CommandId></rsp:CommandResponse>",
            "Signal": "<rsp:SignalResponse/>",
            "Delete": "",
            "Send": "<rsp:SendResponse/>",
        }
        return (
            f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:rsp="{NS["rsp"]}">'
            f"<s:Header><a:Action>{action}Response</a:Action><a:RelatesTo>x</a:RelatesTo>"
            f"</s:Header><s:Body>{bodies.get(action, '')}</s:Body></s:Envelope>"
        )


@pytest.fixture
def serve() -> Iterator[callable]:  # type: ignore[valid-type]
    servers: list[ThreadingHTTPServer] = []

    def start(replay: Replay) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.connection.setsockopt(6, 1, 1)  # TCP_NODELAY
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body, status = replay.answer(data)
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
                self.send_header("Server", "Microsoft-HTTPAPI/2.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/wsman"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _shell(url: str, *, persistent: bool = False) -> WinRMShell:
    settings = WinRMSettings(url, "lab", "Passw0rd!", auth=WinRMAuth.BASIC, allow_unencrypted=True)
    return WinRMShell(settings, persistent_powershell=persistent)


def _expected_output(messages: list[dict[str, object]]) -> tuple[str, int | None]:
    """The recorded stdout (every stdout stream of every Receive) and ExitCode."""
    out, code = b"", None
    for m in messages:
        response = str(m["response"])
        if _action(str(m["request"])) != "Receive" or _fault_code(response):
            continue
        root = ET.fromstring(response)
        for stream in root.iter(f"{{{NS['rsp']}}}Stream"):
            if stream.get("Name") == "stdout" and stream.text:
                out += base64.b64decode(stream.text)
        exit_code = root.find(".//rsp:ExitCode", NS)
        if exit_code is not None and exit_code.text:
            code = int(exit_code.text)
    return out.decode("utf-8", "replace"), code


def _winrs_files() -> list[Path]:
    return sorted(corpus("wsman-recordings").glob("test_winrs_*.yml"))


def test_every_windows_remote_shell_recording_is_accepted(serve) -> None:  # type: ignore[no-untyped-def]
    files = _winrs_files()
    assert len(files) >= 10
    replayed = faults = 0
    for path in files:
        messages = _messages(path)
        replay = Replay(messages)
        url = serve(replay)
        recorded_faults = [
            c for m in messages if (c := _fault_code(str(m["response"]))) and c != TIMED_OUT
        ]
        if "Receive" not in replay.queues:  # a shell opened and deleted, nothing run
            with _shell(url) as sh:
                sh.reconnect(timeout_s=20)  # Create
            assert replay.served == ["Create", "Delete"], path.name
            replayed += 1
            continue
        with _shell(url) as sh:
            try:
                if "Send" in replay.queues:  # stdin: a script too long for -EncodedCommand
                    script = "\n".join(f"Write-Output {i}" for i in range(800))
                    result = sh.run_powershell(script, timeout_s=30)
                else:
                    result = sh.run("cmd.exe", timeout_s=30)
            except InfrastructureError as exc:
                assert recorded_faults, f"{path.name}: {exc}"
                assert str(recorded_faults[0]) in str(exc), (path.name, str(exc))
                faults += 1
                continue
        assert not recorded_faults, f"{path.name}: fault {recorded_faults} not raised"
        stdout, code = _expected_output(messages)
        assert result.exit_code == code, path.name
        assert result.stdout == stdout, path.name
        assert "Receive" in replay.served, path.name
        replayed += 1
    print(f"\nwsman-recordings: {replayed} recordings replayed whole, {faults} faults mapped")
    assert replayed >= 8 and faults >= 2


def test_every_recorded_fault_becomes_an_infrastructure_error_naming_its_code(serve) -> None:  # type: ignore[no-untyped-def]
    faults = [
        (path.name, str(m["response"]), _status(m))
        for path in sorted(corpus("wsman-recordings").glob("*.yml"))
        for m in _messages(path)
        if _fault_code(str(m["response"])) not in (None, TIMED_OUT)
    ]
    assert len(faults) >= 5
    for name, response, status in faults:
        code = _fault_code(response)
        replay = Replay([])
        replay.queues["Create"].append(
            (
                Replay._synthesized("Create").replace(
                    "<s:Body></s:Body>",
                    f'<s:Body><w:SelectorSet xmlns:w="{NS["w"]}"><w:Selector Name="ShellId">'
                    "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE</w:Selector></w:SelectorSet></s:Body>",
                ),
                200,
            )
        )
        replay.queues["Command"].append((response, status))
        url = serve(replay)
        with _shell(url) as sh, pytest.raises(InfrastructureError) as err:
            sh.run("cmd.exe", timeout_s=20)
        assert str(code) in str(err.value), (name, str(err.value))


def _fault_shape(envelope: str) -> tuple[str, str, str, str | None]:
    """(code value, subcode value, WSManFault code, FaultDetail) of a fault envelope."""
    root = ET.fromstring(envelope)
    code = root.findtext(".//s:Code/s:Value", "", NS)
    sub = root.findtext(".//s:Code/s:Subcode/s:Value", "", NS)
    wsman = root.find(".//f:WSManFault", NS)
    detail = root.findtext(".//w:FaultDetail", None, NS)
    return code, sub, wsman.get("Code", "") if wsman is not None else "", detail


def test_the_virtual_lab_faults_an_unknown_command_id_as_windows_does(tmp_path: Path) -> None:
    """The recorded Receive for a CommandId that does not exist (test_winrs_bad_cmd_id), and
    the virtual lab's answer to the same request from pywinrm: same code, subcode, WSManFault
    code and FaultDetail."""
    import winrm
    from winrm.exceptions import WSManFaultError

    from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint

    messages = _messages(corpus("wsman-recordings") / "test_winrs_bad_cmd_id.yml")
    recorded = next(str(m["response"]) for m in messages if _fault_code(str(m["response"])))
    with WinRMEndpoint(
        BuiltinExecutor(),
        "lab",
        "Passw0rd!",
        https=False,
        allow_unencrypted=False,
        cert_dir=tmp_path,
    ) as ep:
        proto = winrm.protocol.Protocol(
            ep.url, transport="ntlm", username="lab", password="Passw0rd!", ca_trust_path=None
        )
        shell = proto.open_shell()
        with pytest.raises(WSManFaultError) as err:
            proto.get_command_output_raw(shell, "00000000-0000-0000-0000-000000000000")
        proto.close_shell(shell)
    real = _fault_shape(recorded)
    assert (err.value.fault_code, err.value.fault_subcode, str(err.value.wsman_fault_code)) == (
        real[0],
        real[1],
        real[2],
    )


def test_the_virtual_lab_echoes_every_recorded_create_idle_timeout(tmp_path: Path) -> None:
    """Every recorded Create request, sent as recorded to the virtual lab (Basic over HTTP,
    AllowUnencrypted, Windows' default IdleTimeout setting): the lab's CreateResponse carries
    the IdleTimeOut the real server answered (`PT60S` asked -> `PT60.000S`; none asked -> the
    server's `PT7200.000S`)."""
    import requests

    from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint

    creates = [
        (path.name, str(m["request"]), str(m["response"]))
        for path in sorted(corpus("wsman-recordings").glob("*.yml"))
        for m in _messages(path)
        if _action(str(m["request"])) == "Create"
    ]
    assert len(creates) >= 10
    compared: dict[str, int] = defaultdict(int)
    with WinRMEndpoint(
        BuiltinExecutor(),
        "lab",
        "Passw0rd!",
        https=False,
        allow_unencrypted=True,
        cert_dir=tmp_path,
    ) as ep:
        for name, request, response in creates:
            recorded = ET.fromstring(response).findtext(".//rsp:Shell/rsp:IdleTimeOut", None, NS)
            assert recorded, f"{name}: the recorded CreateResponse has no IdleTimeOut"
            answer = requests.post(
                ep.url,
                data=request.encode("utf-8"),
                auth=("lab", "Passw0rd!"),
                headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                timeout=10,
            )
            assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
            root = ET.fromstring(answer.content)
            assert _action(answer.text) == "CreateResponse", name
            lab = root.findtext(".//rsp:Shell/rsp:IdleTimeOut", None, NS)
            assert lab == recorded, (name, lab, recorded)
            compared[recorded] += 1
    print(f"\nwsman-recordings: {len(creates)} Create IdleTimeOut echoes equal: {dict(compared)}")
    assert set(compared) == {"PT7200.000S", "PT60.000S"}
