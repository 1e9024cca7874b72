"""The Windows Remote Shell resource: shells, their commands, and the six actions on them.

`ShellService.handle(request, user=..., client_ip=...)` answers Create (honours a client-chosen
`ShellId` and `rsp:IdleTimeOut`, see `idle`), Command, Receive (holds until output, exit or the
request's OperationTimeout, then fault 2150858793), Send (stdin), Signal (terminate / ctrl_c) and
Delete. Command lines run through cmd.exe are limited to 8191 characters like cmd.exe, unless
`WINRS_SKIP_CMD_SHELL` is TRUE on the Create or the Command; a process started directly is
limited by CreateProcess (32767).
A shell with no request on it for longer than its IdleTimeOut (times the lab's time_scale) is
deleted with its commands: checked at every request and by `expire_idle()`, which the endpoint
calls from its accept loop.

>>> svc = ShellService(BuiltinExecutor(), address="http://127.0.0.1:5985/wsman")  # doctest: +SKIP
>>> svc.handle(parse_request(body), user="tester", client_ip="127.0.0.1")        # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import codecs
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.virtual_lab.winrm.console_stdin import ConsoleModeStdin, console_mode
from harness.virtual_lab.winrm.executor import Executor, FinishedCommand, RunningCommand
from harness.virtual_lab.winrm.idle import (
    DEFAULT_IDLE_MS,
    NotADuration,
    echo,
    effective_idle_s,
    requested_idle_s,
)
from harness.virtual_lab.winrm.wsman import (
    NS,
    Action,
    WsmanFaultCode,
    WsmanReply,
    WsmanRequest,
    create_body,
    fault,
    output_budget,
    receive_body,
    reply,
)

CMD_LINE_LIMIT = 8191  # cmd.exe
CREATE_PROCESS_LIMIT = 32767  # CreateProcess lpCommandLine
TOO_LONG_MESSAGE = "The command line is too long.\r\n"
DEFAULT_OPERATION_TIMEOUT_S = 60.0
_WAIT_SLICE_S = 0.25  # a Receive re-checks for shutdown at least this often


@dataclass
class _Held:
    """A command's output waiting for the next Receive, and its exit code once known."""

    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    done_sent: bool = False

    def pending(self) -> bool:
        return bool(self.stdout or self.stderr) or (
            self.exit_code is not None and not self.done_sent
        )

    def take(self, budget: int | None) -> tuple[bytes, bytes, int | None]:
        """Output for one Receive: all of it, or `budget` bytes (stdout first); the exit code
        only with the last of the output."""
        n = len(self.stdout) if budget is None else min(len(self.stdout), budget)
        stdout, self.stdout = self.stdout[:n], self.stdout[n:]
        room = None if budget is None else budget - n
        m = len(self.stderr) if room is None else min(len(self.stderr), room)
        stderr, self.stderr = self.stderr[:m], self.stderr[m:]
        if self.stdout or self.stderr or self.exit_code is None:
            return stdout, stderr, None
        self.done_sent = True
        return stdout, stderr, self.exit_code


@dataclass
class Shell:
    shell_id: str
    owner: str
    encoding: str
    skip_cmd_shell: bool
    commands: dict[str, RunningCommand] = field(default_factory=dict)
    operations: int = 0  # Commands started in this shell's life (the operations quota)
    #: output taken from a command but not yet sent (it did not fit one Receive), by CommandId
    held: dict[str, _Held] = field(default_factory=dict)
    idle_s: float = DEFAULT_IDLE_MS / 1000  # its IdleTimeOut, unscaled (what Windows echoes)
    last_active: float = 0.0  # clock() when the last request on it began or was answered
    busy: int = 0  # requests on it being answered now (a held Receive is not idleness)


def _encoding_for(codepage: str) -> str:
    if codepage.strip() == "65001":
        return "utf-8"
    try:
        return codecs.lookup(f"cp{int(codepage)}").name
    except (ValueError, LookupError):
        return "cp437"


class ShellService:
    """All shells of one endpoint (a reboot of the endpoint forgets them)."""

    def __init__(
        self,
        executor: Executor,
        *,
        address: str,
        stopping: threading.Event | None = None,
        machine: str = "127.0.0.1",
        idle_timeout_ms: int = DEFAULT_IDLE_MS,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`idle_timeout_ms` is the server's `WSMan:\\localhost\\Shell\\IdleTimeout`; idle
        timeouts last that many seconds times `time_scale` on `clock`."""
        self._executor = executor
        self.idle_timeout_ms = idle_timeout_ms
        self._time_scale = time_scale
        self._clock = clock
        self._address = address
        self._stopping = stopping or threading.Event()
        self._machine = machine
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}
        #: Sends still to answer with the w:TimedOut fault after taking their data, as a busy
        #: real host does (ansible#79016, #81538: the data was written, the Send timed out)
        self.send_timeouts_pending = 0
        #: MaxConcurrentOperationsPerUser: Commands a shell may start in its life (Windows'
        #: default 1500; Signal terminate does not give one back)
        self.operations_quota = 1500
        self._handlers: dict[str, Callable[[WsmanRequest, str, str], WsmanReply]] = {
            Action.CREATE.value: self._create,
            Action.COMMAND.value: self._command,
            Action.RECEIVE.value: self._receive,
            Action.SEND.value: self._send,
            Action.SIGNAL.value: self._signal,
            Action.DELETE.value: self._delete,
        }

    @property
    def shell_count(self) -> int:
        with self._lock:
            return len(self._shells)

    def handle(self, req: WsmanRequest, *, user: str, client_ip: str) -> WsmanReply:
        handler = self._handlers.get(req.action)
        if handler is None:
            return self._fault(
                req, WsmanFaultCode.ACTION_NOT_SUPPORTED, f"Unsupported action {req.action}"
            )
        if req.bad_operation_timeout is not None:
            return self._fault(
                req,
                WsmanFaultCode.INVALID_HEADER,
                "The WS-Management service cannot process the request because the "
                f"OperationTimeout value {req.bad_operation_timeout} is not valid.",
            )
        # a shell idle too long is gone before this request reaches it; else it is busy now
        shell_id = req.selectors.get("ShellId", "").upper()
        self.expire_idle(claim=shell_id)
        try:
            return handler(req, user, client_ip)
        finally:
            with self._lock:
                shell = self._shells.get(shell_id) if shell_id else None
                if shell is not None:
                    shell.busy = max(0, shell.busy - 1)
                    shell.last_active = self._clock()

    def expire_idle(self, claim: str = "") -> int:
        """Delete every shell (and terminate its commands) with no request on it for longer
        than its scaled IdleTimeOut; how many went. The shell `claim`, if it is still there, is
        then marked busy (a request on it has begun), in the same step."""
        now = self._clock()
        with self._lock:
            gone = [
                s
                for s in self._shells.values()
                if s.busy == 0 and now - s.last_active > s.idle_s * self._time_scale
            ]
            for shell in gone:
                del self._shells[shell.shell_id]
            claimed = self._shells.get(claim) if claim else None
            if claimed is not None:
                claimed.busy += 1
                claimed.last_active = now
        for shell in gone:
            for cmd in shell.commands.values():
                cmd.terminate()
        return len(gone)

    def close_all(self) -> None:
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
        for shell in shells:
            for cmd in shell.commands.values():
                cmd.terminate()

    # -- helpers -------------------------------------------------------------------------------
    def _fault(self, req: WsmanRequest, code: WsmanFaultCode, message: str) -> WsmanReply:
        return fault(req, code, message, self._machine)

    def _shell(self, req: WsmanRequest) -> Shell | WsmanReply:
        shell_id = req.selectors.get("ShellId", "")
        with self._lock:
            shell = self._shells.get(shell_id.upper())
        if shell is None:
            return self._fault(
                req,
                WsmanFaultCode.SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed because "
                "the shell was not found on the server.",
            )
        return shell

    def _command_of(
        self, req: WsmanRequest, shell: Shell, command_id: str
    ) -> RunningCommand | WsmanReply:
        cmd = shell.commands.get(command_id.upper())
        if cmd is None:
            return self._fault(  # Windows' answer, as recorded from a real server
                req,
                WsmanFaultCode.SHELL_NOT_FOUND,
                "The Windows Remote Shell received a request to perform an operation on a command "
                "identifier that does not exist. Either the command has completed execution or "
                "the client specified an invalid command identifier. ",
            )
        return cmd

    # -- actions -------------------------------------------------------------------------------
    def _create(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        wanted = req.body.get("ShellId") if req.body is not None else None
        shell_id = (wanted or str(uuid.uuid4())).upper()
        asked = req.body.findtext("rsp:IdleTimeOut", None, NS) if req.body is not None else None
        try:
            idle_s = effective_idle_s(requested_idle_s(asked), self.idle_timeout_ms)
        except NotADuration:  # as a Windows Server answers it (pywinrm issue 377)
            return self._fault(
                req,
                WsmanFaultCode.SCHEMA_VALIDATION,
                "The SOAP XML in the message does not match the corresponding XML schema "
                "definition. Change the XML and retry. ",
            )
        shell = Shell(
            shell_id=shell_id,
            owner=user,
            encoding=_encoding_for(req.options.get("WINRS_CODEPAGE", "437")),
            skip_cmd_shell=req.option_true("WINRS_SKIP_CMD_SHELL"),
            idle_s=idle_s,
            last_active=self._clock(),
        )
        with self._lock:
            self._shells[shell_id] = shell
        return reply(
            req,
            Action.CREATE.response_action,
            create_body(
                wanted or shell_id, self._address, user, client_ip, idle_timeout=echo(idle_s)
            ),
        )

    def _command(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        shell = self._shell(req)
        if isinstance(shell, WsmanReply):
            return shell
        line_el = req.body
        if line_el is None or line_el.tag != f"{{{NS['rsp']}}}CommandLine":
            return self._fault(
                req, WsmanFaultCode.INVALID_PARAMETER, "Command without rsp:CommandLine"
            )
        with self._lock:
            over = shell.operations >= self.operations_quota
            shell.operations += 0 if over else 1
        if over:
            return self._fault(
                req,
                WsmanFaultCode.QUOTA_LIMIT,
                "The WS-Management service cannot process the request. This user is allowed a "
                f"maximum number of {self.operations_quota} concurrent operations, which has "
                "been exceeded. Close existing operations for this user, or raise the quota for "
                "this user.",
            )
        command = (line_el.findtext("rsp:Command", "", NS) or "").strip()
        args = [a.text or "" for a in line_el.findall("rsp:Arguments", NS)]
        skip = shell.skip_cmd_shell or req.option_true("WINRS_SKIP_CMD_SHELL")
        command_line = " ".join([command, *args])
        running: RunningCommand
        if not skip and len(command_line) > CMD_LINE_LIMIT:
            running = FinishedCommand("", TOO_LONG_MESSAGE, 1)
        elif skip and len(command_line) > CREATE_PROCESS_LIMIT:
            return self._fault(
                req, WsmanFaultCode.FILENAME_TOO_LONG, "The filename or extension is too long."
            )
        else:
            running = self._executor.start(command, args, skip_cmd_shell=skip)
            if console_mode(req.options):  # stdin a console: lines cut at 254 characters
                running = ConsoleModeStdin(running)
        command_id = (line_el.get("CommandId") or str(uuid.uuid4())).upper()
        shell.commands[command_id] = running
        return reply(
            req,
            Action.COMMAND.response_action,
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>",
        )

    def _receive(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        shell = self._shell(req)
        if isinstance(shell, WsmanReply):
            return shell
        stream = req.body.find("rsp:DesiredStream", NS) if req.body is not None else None
        command_id = stream.get("CommandId", "") if stream is not None else ""
        if not command_id:  # as recorded from a real server (winrscmd.dll's fault)
            return self._fault(
                req, WsmanFaultCode.PARAMETER_INCORRECT, "The parameter is incorrect. "
            )
        cmd = self._command_of(req, shell, command_id)
        if isinstance(cmd, WsmanReply):
            return cmd
        timeout = req.operation_timeout_s or DEFAULT_OPERATION_TIMEOUT_S
        deadline = time.monotonic() + timeout
        held = shell.held.setdefault(command_id.upper(), _Held())
        budget = output_budget(req.max_envelope)
        while True:
            if not held.pending():
                out = cmd.poll()
                held.stdout += out.stdout.encode(shell.encoding, errors="replace")
                held.stderr += out.stderr.encode(shell.encoding, errors="replace")
                held.exit_code = out.exit_code
            if held.pending():
                # at most what fits the client's MaxEnvelopeSize; the rest in the next Receive
                stdout, stderr, exit_code = held.take(budget)
                body = receive_body(command_id.upper(), stdout, stderr, exit_code)
                return reply(req, Action.RECEIVE.response_action, body)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                return self._fault(
                    req,
                    WsmanFaultCode.OPERATION_TIMEOUT,
                    "The WS-Management service cannot complete the operation within the time "
                    "specified in OperationTimeout.",
                )
            cmd.wait(min(remaining, _WAIT_SLICE_S))

    def _send(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        shell = self._shell(req)
        if isinstance(shell, WsmanReply):
            return shell
        streams = req.body.findall("rsp:Stream", NS) if req.body is not None else []
        for st in streams:
            cmd = self._command_of(req, shell, st.get("CommandId", ""))
            if isinstance(cmd, WsmanReply):
                return cmd
            if getattr(cmd, "exited", False):  # its stdin pipe is closed (ansible#69595)
                return self._fault(req, WsmanFaultCode.BROKEN_PIPE, "The pipe has been ended. ")
            try:
                data = base64.b64decode((st.text or "").strip(), validate=True)
            except binascii.Error:
                return self._fault(req, WsmanFaultCode.INVALID_PARAMETER, "stdin is not base64")
            end = st.get("End", "").lower() == "true"
            cmd.write_stdin(data.decode(shell.encoding, errors="replace"), end=end)
        with self._lock:
            timed_out = self.send_timeouts_pending > 0
            self.send_timeouts_pending -= 1 if timed_out else 0
        if timed_out:
            return self._fault(
                req,
                WsmanFaultCode.OPERATION_TIMEOUT,
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
            )
        return reply(req, Action.SEND.response_action, "<rsp:SendResponse/>")

    def _signal(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        shell = self._shell(req)
        if isinstance(shell, WsmanReply):
            return shell
        command_id = req.body.get("CommandId", "") if req.body is not None else ""
        code = (req.body.findtext("rsp:Code", "", NS) if req.body is not None else "") or ""
        cmd = self._command_of(req, shell, command_id)
        if isinstance(cmd, WsmanReply):
            return cmd
        cmd.terminate()
        if code.strip().endswith("/terminate"):
            shell.commands.pop(command_id.upper(), None)
        return reply(req, Action.SIGNAL.response_action, "<rsp:SignalResponse/>")

    def _delete(self, req: WsmanRequest, user: str, client_ip: str) -> WsmanReply:
        shell = self._shell(req)
        if isinstance(shell, WsmanReply):
            return shell
        with self._lock:
            self._shells.pop(shell.shell_id, None)
        for cmd in shell.commands.values():
            cmd.terminate()
        return reply(req, Action.DELETE.response_action)
