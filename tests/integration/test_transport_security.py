"""Transport security through the public API (`LabConnector`) against the virtual lab's real
WinRM (HTTPS) and SSH endpoints: certificates and host keys are verified, never trusted blindly.

- WinRM over HTTPS validates the server certificate by default: against the lab CA it works,
  against a different CA (or the system store) it is refused.
- SSH host keys are pinned: an unknown key and a changed key are each refused, with a message
  that says how to trust the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.config.endpoints import LabEndpoints
from harness.config.lab import Lab, load_lab
from harness.errors import InfrastructureError
from harness.lab.connect import LabConnector
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.virtual_lab.ssh_keys import HostKey
from harness.virtual_lab.winrm.certs import LabPki

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The default virtual lab with tb-01 on WinRM over HTTPS (the schema's default scheme)."""
    text = (ROOT / "lab_config" / "virtual.yaml").read_text()
    text = text.replace("packages/", f"{ROOT / 'lab_config' / 'packages'}/")
    old = "      kind: winrm\n      scheme: http\n      port: 55985\n"
    assert text.count(old) == 1
    text = text.replace(old, "      kind: winrm\n")  # scheme and validation: defaults
    path = tmp_path_factory.mktemp("lab") / "lab.yaml"
    path.write_text(text)
    return load_lab(path)


def _with_dut(endpoints: LabEndpoints, dut: str, **changes: object) -> LabEndpoints:
    d = endpoints.duts[dut]
    parts = {k: v for k, v in changes.items() if k in ("winrm", "ssh")}
    duts = {**endpoints.duts, dut: dataclasses.replace(d, **parts)}  # type: ignore[arg-type]
    return dataclasses.replace(endpoints, duts=duts)


def test_winrm_defaults_to_https_with_certificate_validation(lab: Lab) -> None:
    t = lab.duts["tb-01"].transport
    assert (t.kind, t.scheme, t.port) == ("winrm", "https", 5986)
    assert t.server_cert_validation == "validate" and t.allow_unencrypted is False


def test_winrm_https_against_the_lab_ca_works(
    lab: Lab, runtime: VirtualLabRuntime, connector: LabConnector
) -> None:
    shell = connector.shell("tb-01")
    try:
        assert shell.settings.url.startswith("https://")  # type: ignore[union-attr]
        assert shell.run("hostname", timeout_s=10).exit_code == 0
    finally:
        shell.close()


def test_winrm_https_with_the_wrong_ca_is_refused(
    lab: Lab, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    other = LabPki.create(tmp_path / "other-ca")  # a valid CA, just not the one that signed
    ep = runtime.endpoints()
    winrm = dataclasses.replace(ep.duts["tb-01"].winrm, ca_file=str(other.ca_file))
    conn = LabConnector(lab, _with_dut(ep, "tb-01", winrm=winrm))
    shell = conn.shell("tb-01")
    try:
        with pytest.raises(InfrastructureError, match="TLS certificate validation failed"):
            shell.run("hostname", timeout_s=10)
    finally:
        shell.close()


def test_ssh_unknown_host_key_is_refused_with_how_to_trust_it(
    lab: Lab, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ep = runtime.endpoints()
    ssh = dataclasses.replace(ep.duts["m2-01"].ssh, known_hosts=str(empty))
    shell = LabConnector(lab, _with_dut(ep, "m2-01", ssh=ssh)).shell("m2-01")
    try:
        with pytest.raises(InfrastructureError) as info:
            shell.run("hostname", timeout_s=10)
    finally:
        shell.close()
    msg = str(info.value)
    assert f"is not in {empty}" in msg
    assert f"ssh-keyscan -t ed25519 -p {ssh.port} {ssh.host} >> {empty}" in msg
    assert empty.read_text() == ""  # nothing was trusted on first use


def test_ssh_changed_host_key_is_refused_with_how_to_trust_it(
    lab: Lab, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    ep = runtime.endpoints()
    real = ep.duts["m2-01"].ssh
    impostor = HostKey.ensure(tmp_path / "impostor")  # what the file pinned: a different key
    stale = tmp_path / "known_hosts"
    stale.write_text(impostor.known_hosts_line(real.host, real.port) + "\n")
    ssh = dataclasses.replace(real, known_hosts=str(stale))
    shell = LabConnector(lab, _with_dut(ep, "m2-01", ssh=ssh)).shell("m2-01")
    try:
        with pytest.raises(InfrastructureError, match="CHANGED") as info:
            shell.run("hostname", timeout_s=10)
    finally:
        shell.close()
    msg = str(info.value)
    assert impostor.fingerprint in msg
    assert "ssh-keygen -R" in msg and str(stale) in msg  # how to trust the new key
    assert stale.read_text().count("\n") == 1  # the pinned key was not replaced


def test_ssh_with_the_pinned_key_works(runtime: VirtualLabRuntime, connector: LabConnector) -> None:
    shell = connector.shell("m2-01")
    try:
        assert shell.run("hostname", timeout_s=10).exit_code == 0
    finally:
        shell.close()
