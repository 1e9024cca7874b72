"""WS-Management SOAP envelopes: parse a request, build responses and faults (MS-WSMV).

Every response carries `a:RelatesTo` = the request's `a:MessageID` (pypsrp checks it, pywinrm
asserts it for Signal and Delete). Faults are HTTP 500 with `s:Fault` and
`s:Detail/f:WSManFault[@Code]`.

>>> req = parse_request(xml_bytes)                                   # doctest: +SKIP
>>> reply = fault(req, WsmanFaultCode.OPERATION_TIMEOUT, "timed out")  # doctest: +SKIP
>>> reply.status
500
"""

from __future__ import annotations

import base64
import enum
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_NS = NS["rsp"]
CMD_RESOURCE_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"


class Action(str, enum.Enum):
    CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    COMMAND = f"{SHELL_NS}/Command"
    RECEIVE = f"{SHELL_NS}/Receive"
    SEND = f"{SHELL_NS}/Send"
    SIGNAL = f"{SHELL_NS}/Signal"

    @property
    def short(self) -> str:
        return self.value.rsplit("/", 1)[-1]

    @property
    def response_action(self) -> str:
        return self.value + "Response"


class WsmanFaultCode(enum.IntEnum):
    """WSManFault codes the clients act on."""

    OPERATION_TIMEOUT = 2150858793  # Receive outlived OperationTimeout: clients retry
    SHELL_NOT_FOUND = 2150858843  # unknown ShellId (e.g. after a reboot)
    ACTION_NOT_SUPPORTED = 2150858770
    INVALID_PARAMETER = 2147942487  # ERROR_INVALID_PARAMETER
    FILENAME_TOO_LONG = 2147942606  # ERROR_FILENAME_EXCED_RANGE from CreateProcess
    #: MaxConcurrentOperationsPerUser exceeded: on a reused shell after about 1500 Commands,
    #: since Signal terminate does not release the count (MS-WSMV product behaviour note <118>)
    QUOTA_LIMIT = 2150859174
    #: ERROR_INVALID_PARAMETER from the shell plugin (winrscmd.dll), e.g. a Receive without a
    #: CommandId: recorded from a real server with a ProviderFault and FaultDetail InvalidValue
    PARAMETER_INCORRECT = 87
    #: an invalid header value such as a negative OperationTimeout (PT-1S)
    INVALID_HEADER = 2150858767
    #: HRESULT_FROM_WIN32(ERROR_BROKEN_PIPE) "The pipe has been ended": a Send to a command whose
    #: process has exited (ansible#69595 quotes the message; the code is inferred from it)
    BROKEN_PIPE = 2147942509
    #: the body does not match the XML schema, e.g. an rsp:IdleTimeOut that is not an
    #: xs:duration (pywinrm issue 377 quotes the fault from a Windows Server)
    SCHEMA_VALIDATION = 2150858817


_FAULT_SUBCODE = {
    WsmanFaultCode.OPERATION_TIMEOUT: "w:TimedOut",
    WsmanFaultCode.SHELL_NOT_FOUND: "w:InvalidSelectors",
    WsmanFaultCode.ACTION_NOT_SUPPORTED: "a:ActionNotSupported",
    WsmanFaultCode.QUOTA_LIMIT: "w:QuotaLimit",
    WsmanFaultCode.PARAMETER_INCORRECT: "w:InvalidParameter",
    WsmanFaultCode.INVALID_HEADER: "a:InvalidMessageInformationHeader",
    WsmanFaultCode.SCHEMA_VALIDATION: "w:SchemaValidationError",
}
_FAULT_DETAIL = {
    WsmanFaultCode.SHELL_NOT_FOUND: "UnexpectedSelectors",
    WsmanFaultCode.PARAMETER_INCORRECT: "InvalidValue",
}
#: Faults the shell plugin raises: Windows wraps their message in an f:ProviderFault.
_PROVIDER = (WsmanFaultCode.PARAMETER_INCORRECT, WsmanFaultCode.BROKEN_PIPE)


class MalformedRequest(ValueError):
    """Not a SOAP envelope we can answer (HTTP 400)."""


@dataclass
class WsmanRequest:
    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout_s: float | None = None
    bad_operation_timeout: str | None = None  # an OperationTimeout that is not a valid duration
    max_envelope: int | None = None  # wsman:MaxEnvelopeSize of the request, bytes
    body: ET.Element | None = None

    def option_true(self, name: str) -> bool:
        return self.options.get(name, "").strip().upper() == "TRUE"


@dataclass(frozen=True)
class WsmanReply:
    status: int
    xml: bytes


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float | None:
    """xs:duration (`PT20S`, `PT20.000S`, `P0DT0H1M0S`) in seconds; None if unparsable."""
    m = _DURATION.match(text.strip())
    if not m:
        return None
    d, h, mi, s = (float(m.group(k) or 0) for k in "dhms")
    return ((d * 24 + h) * 60 + mi) * 60 + s


def parse_request(data: bytes) -> WsmanRequest:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MalformedRequest(f"not XML: {exc}") from exc
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if root.tag != f"{{{NS['s']}}}Envelope" or header is None:
        raise MalformedRequest("not a SOAP 1.2 envelope with a header")
    action = (header.findtext("a:Action", "", NS) or "").strip()
    message_id = (header.findtext("a:MessageID", "", NS) or "").strip()
    if not action or not message_id:
        raise MalformedRequest("missing a:Action or a:MessageID")
    req = WsmanRequest(
        action=action,
        message_id=message_id,
        resource_uri=(header.findtext("w:ResourceURI", "", NS) or "").strip(),
        body=body[0] if body is not None and len(body) else None,
    )
    for sel in header.findall("w:SelectorSet/w:Selector", NS):
        req.selectors[sel.get("Name", "")] = (sel.text or "").strip()
    for opt in header.findall("w:OptionSet/w:Option", NS):
        req.options[opt.get("Name", "")] = (opt.text or "").strip()
    size = (header.findtext("w:MaxEnvelopeSize", "", NS) or "").strip()
    if size.isdigit():
        req.max_envelope = int(size)
    timeout = header.findtext("w:OperationTimeout", None, NS)
    if timeout:
        req.operation_timeout_s = parse_duration(timeout)
        if req.operation_timeout_s is None:
            req.bad_operation_timeout = timeout.strip()
    return req


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    xmlns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (
        f'<s:Envelope xml:lang="en-US" {xmlns}><s:Header>'
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def reply(req: WsmanRequest, action: str, body: str = "") -> WsmanReply:
    return WsmanReply(200, _envelope(action, req.message_id, body))


def fault(
    req: WsmanRequest, code: WsmanFaultCode, message: str, machine: str = "127.0.0.1"
) -> WsmanReply:
    subcode = _FAULT_SUBCODE.get(code, "w:InternalError")
    # the client's mistake (a selector or parameter that does not exist) is s:Sender on Windows
    sender = code in (
        WsmanFaultCode.SHELL_NOT_FOUND,
        WsmanFaultCode.INVALID_PARAMETER,
        WsmanFaultCode.PARAMETER_INCORRECT,
        WsmanFaultCode.INVALID_HEADER,
        WsmanFaultCode.SCHEMA_VALIDATION,
    )
    detail = (
        "<w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
        f"{_FAULT_DETAIL[code]}</w:FaultDetail>"
        if code in _FAULT_DETAIL
        else ""
    )
    text = escape(message)
    if code in _PROVIDER:
        text = (
            '<f:ProviderFault provider="Shell cmd plugin" '
            f'path="%systemroot%\\system32\\winrscmd.dll">{text}</f:ProviderFault>'
        )
    body = (
        f"<s:Fault><s:Code><s:Value>{'s:Sender' if sender else 's:Receiver'}</s:Value>"
        f"<s:Subcode><s:Value>{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(message)}</s:Text></s:Reason>'
        f"<s:Detail>{detail}"
        f"<f:WSManFault Code={quoteattr(str(int(code)))} Machine={quoteattr(machine)}>"
        f"<f:Message>{text}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return WsmanReply(500, _envelope(FAULT_ACTION, req.message_id, body))


def create_body(
    shell_id: str, address: str, owner: str, client_ip: str, *, idle_timeout: str
) -> str:
    """The CreateResponse body; `idle_timeout` is the shell's rsp:IdleTimeOut as Windows writes
    it (`harness.virtual_lab.winrm.idle.echo`)."""
    sel = f'<w:Selector Name="ShellId">{escape(shell_id)}</w:Selector>'
    return (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{CMD_RESOURCE_URI}</w:ResourceURI><w:SelectorSet>{sel}</w:SelectorSet>"
        "</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{escape(shell_id)}</rsp:ShellId>"
        f"<rsp:ResourceUri>{CMD_RESOURCE_URI}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        f"<rsp:IdleTimeOut>{escape(idle_timeout)}</rsp:IdleTimeOut>"
        "<rsp:InputStreams>stdin</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )


#: Bytes of output per rsp:Stream element (Windows sends output in many small Streams).
STREAM_CHUNK = 4096
#: Room kept for the envelope around the streams when a Receive's output is cut to fit the
#: client's MaxEnvelopeSize.
ENVELOPE_OVERHEAD = 4096


def output_budget(max_envelope: int | None) -> int | None:
    """Raw output bytes one ReceiveResponse may carry within `max_envelope` (base64 and the
    per-Stream markup counted), or None when the client named no limit."""
    if not max_envelope:
        return None
    room = max(max_envelope - ENVELOPE_OVERHEAD, 1024)
    per_chunk = 4 * STREAM_CHUNK // 3 + 120  # base64 of a chunk and its element
    return max(STREAM_CHUNK, room // per_chunk * STREAM_CHUNK)


def receive_body(command_id: str, stdout: bytes, stderr: bytes, exit_code: int | None) -> str:
    cid = quoteattr(command_id)
    parts = ["<rsp:ReceiveResponse>"]
    for name, data in (("stdout", stdout), ("stderr", stderr)):
        # Windows splits output over several rsp:Stream elements of a few KiB each
        for i in range(0, len(data), STREAM_CHUNK):
            chunk = base64.b64encode(data[i : i + STREAM_CHUNK]).decode()
            parts.append(f'<rsp:Stream Name="{name}" CommandId={cid}>{chunk}</rsp:Stream>')
    if exit_code is None:
        parts.append(f'<rsp:CommandState CommandId={cid} State="{SHELL_NS}/CommandState/Running"/>')
    else:
        parts.append(f'<rsp:Stream Name="stdout" CommandId={cid} End="true"></rsp:Stream>')
        parts.append(f'<rsp:Stream Name="stderr" CommandId={cid} End="true"></rsp:Stream>')
        parts.append(
            f'<rsp:CommandState CommandId={cid} State="{SHELL_NS}/CommandState/Done">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    parts.append("</rsp:ReceiveResponse>")
    return "".join(parts)
