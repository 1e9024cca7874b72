"""The virtual lab's WinRM endpoint: WS-Management shells over HTTP/HTTPS with NTLM or Basic.

>>> from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
>>> ep = WinRMEndpoint(BuiltinExecutor(), "tester", "pw", https=True,
...                    allow_unencrypted=False, cert_dir=tmp).start()       # doctest: +SKIP
>>> ep.url, ep.ca_file                                                       # doctest: +SKIP
"""

from __future__ import annotations

from harness.virtual_lab.winrm.builtin import BuiltinExecutor
from harness.virtual_lab.winrm.certs import LabPki
from harness.virtual_lab.winrm.executor import (
    CommandOutput,
    Executor,
    FinishedCommand,
    RunningCommand,
    SteppedCommand,
)
from harness.virtual_lab.winrm.server import WinRMEndpoint

__all__ = [
    "BuiltinExecutor",
    "CommandOutput",
    "Executor",
    "FinishedCommand",
    "LabPki",
    "RunningCommand",
    "SteppedCommand",
    "WinRMEndpoint",
]
