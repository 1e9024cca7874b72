"""Where a running virtual lab can be reached: the endpoints file, typed.

The lab process writes this JSON (mode 0600, atomically: a temp file in the same directory,
then a rename) once every endpoint listens; `harness run` and the tests read it back:

    {"duts": {"tb-01": {"winrm": {"http_url", "https_url", "ca_file", "username", "password"},
                        "ssh": {"host", "port", "username", "password", "known_hosts"},
                        "control_url"}},
     "instruments": {"switch-1": {"resource": "TCPIP0::127.0.0.1::PORT::SOCKET"}},
     "control": {"url", "token"}}

The file holds passwords and the control token: it is private to the user and removed when the
lab stops. `describe()` renders it for a terminal without any secret.

>>> ep = LabEndpoints.from_json({"duts": {}, "instruments": {}, "control": {"url": "u", "token": "t"}})
>>> ep.control.url
'u'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.private_files import private_dir, write_private


@dataclass(frozen=True)
class WinRmEndpoint:
    http_url: str
    https_url: str
    ca_file: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SshEndpointInfo:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    known_hosts: str = ""


@dataclass(frozen=True)
class DutEndpoints:
    winrm: WinRmEndpoint
    ssh: SshEndpointInfo
    control_url: str


@dataclass(frozen=True)
class InstrumentEndpoint:
    resource: str


@dataclass(frozen=True)
class ControlEndpoint:
    url: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class LabEndpoints:
    """Everything a client needs to reach the lab (the endpoints file's content)."""

    duts: dict[str, DutEndpoints]
    instruments: dict[str, InstrumentEndpoint]
    control: ControlEndpoint

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabEndpoints:
        """Parse the endpoints file's JSON; a missing key raises KeyError/TypeError."""
        duts = {
            name: DutEndpoints(
                winrm=WinRmEndpoint(**d["winrm"]),
                ssh=SshEndpointInfo(**d["ssh"]),
                control_url=d["control_url"],
            )
            for name, d in data["duts"].items()
        }
        instruments = {
            name: InstrumentEndpoint(resource=i["resource"])
            for name, i in data["instruments"].items()
        }
        return cls(duts, instruments, ControlEndpoint(**data["control"]))

    @classmethod
    def read(cls, path: Path) -> LabEndpoints:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        """Write the file 0600, atomically (temp file in the same directory + rename)."""
        path = Path(path)
        if not path.parent.exists():
            private_dir(path.parent)
        write_private(path, json.dumps(self.to_json(), indent=2) + "\n")

    def describe(self) -> list[str]:
        """One line per endpoint, for a terminal: no password, no token."""
        lines = []
        for name, d in self.duts.items():
            lines.append(f"{name}: winrm {d.winrm.http_url} (NTLM), {d.winrm.https_url}")
            lines.append(f"{name}:   CA {d.winrm.ca_file}, user {d.winrm.username}")
            lines.append(
                f"{name}: ssh {d.ssh.username}@{d.ssh.host} -p {d.ssh.port}, "
                f"known_hosts {d.ssh.known_hosts}"
            )
        for name, i in self.instruments.items():
            lines.append(f"{name}: {i.resource}")
        lines.append(f"control: {self.control.url}")
        return lines
