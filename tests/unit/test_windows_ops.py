"""Operation delivery (ops.py), result parsing, typed results and how operations are transcribed."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessBug, InfrastructureError
from harness.remote.base import CommandResult
from harness.remote.powershell import invocation
from harness.remote.transcript import MASK, Redactor, Transcript, describe_operation
from harness.windows.ops import OPS_DIR, OperationCatalog, decode_params, parse_result
from harness.windows.results import (
    CrashEvidence,
    FileHash,
    HostFacts,
    InstallOutcome,
    InstallResult,
    KdpSource,
    ParseCheck,
    PnpDevice,
    SessionInfo,
    StorageProbeResult,
    VerifierState,
)
from harness.windows.shape import format_utc, parse_utc

HEADER = """# Operation: {name}
# Facility: nothing (a test script)
# Parameters: {{"x": 1}}
# Result: {{"x": 1}}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
@{{ x = $P.x }} | ConvertTo-Json -Compress"""

HOSTILE: dict[str, Any] = {
    "single": "it's",
    "double": 'say "hi"',
    "semicolon": "a; Remove-Item C:\\ -Recurse",
    "subexpr": "$(Stop-Computer)",
    "backtick": "`n`$x",
    "amp_pipe": "a & b | c",
    "newlines": "line1\nline2\r\n",
    "smart": "\u2018smart\u2019 \u201cquotes\u201d",
    "non_ascii": "Grüße ✓ 日本",
    "nested": {"list": ["'", "\u2019", 3, None, True]},
}


@pytest.fixture
def catalog(tmp_path: Path) -> OperationCatalog:
    for name in ("echo", "other"):
        (tmp_path / f"{name}.ps1").write_text(HEADER.format(name=name) + "\r\n\r\n", "utf-8")
    (tmp_path / "README.txt").write_text("not an operation")
    return OperationCatalog(tmp_path)


def _result(stdout: str = "", stderr: str = "", exit_code: int = 0) -> CommandResult:
    return CommandResult("op echo {}", exit_code, stdout, stderr, 0.1)


# -- catalog and wrapper -------------------------------------------------------------------------
def test_names_and_cached_text(catalog: OperationCatalog) -> None:
    assert catalog.operation_names() == ["echo", "other"]
    text = catalog.script_text("echo")
    assert text == HEADER.format(name="echo")  # CRLF normalised, trailing newlines stripped
    (catalog.directory / "echo.ps1").write_text("changed")
    assert catalog.script_text("echo") == text  # read once


@pytest.mark.parametrize("name", ["missing", "../echo", "echo.ps1", ""])
def test_unknown_operation_is_a_harness_bug(catalog: OperationCatalog, name: str) -> None:
    with pytest.raises(HarnessBug, match=r"unknown Windows operation .* \(known: echo, other\)"):
        catalog.script_text(name)


def test_wrapper_has_the_contract_shape(catalog: OperationCatalog) -> None:
    script = catalog.build_invocation("echo", {"b": 2, "a": "x"})
    encoded = base64.b64encode(b'{"a": "x", "b": 2}').decode()
    assert script == f"& {{\n{catalog.script_text('echo')}\n}} -ParamsBase64 '{encoded}'"


def test_hostile_parameters_travel_only_as_base64(catalog: OperationCatalog) -> None:
    script = catalog.build_invocation("echo", HOSTILE)
    m = re.fullmatch(r"& \{\n(.*)\n\} -ParamsBase64 '([A-Za-z0-9+/=]+)'", script, re.S)
    assert m is not None and m.group(1) == catalog.script_text("echo")
    assert decode_params(m.group(2)) == HOSTILE
    raw = base64.b64decode(m.group(2)).decode("utf-8")
    assert "Grüße ✓ 日本" in raw  # ensure_ascii=False: UTF-8, not \\u escapes
    for value in ("it's", "$(Stop-Computer)", "`n`$x", "a & b | c", "\u2018smart\u2019", "Grüße"):
        assert value not in script


# -- parse_result --------------------------------------------------------------------------------
def test_the_last_json_line_is_the_result() -> None:
    out = 'noise\r\n{"x": 1}\r\nWARNING: not json\r\n  {"x": 2, "y": "é"}  \r\n'
    assert parse_result("echo", _result(out)) == {"x": 2, "y": "é"}


def test_a_failed_script_names_operation_exit_code_and_stderr() -> None:
    stderr = "Access denied " + "x" * 400
    with pytest.raises(InfrastructureError) as info:
        parse_result("driver_install", _result('{"x": 1}', stderr, exit_code=1))
    message = str(info.value)
    assert message.startswith("operation driver_install failed: exit 1: Access denied")
    assert "x" * 286 in message and "x" * 287 not in message  # 300 characters of stderr


@pytest.mark.parametrize(
    ("stdout", "match"),
    [
        ("", "returned no JSON result"),
        ("hello\r\n", "returned no JSON result"),
        ("{not json\r\n", "returned malformed JSON"),
        ('{"a": 1} trailing\r\n', "returned malformed JSON"),
    ],
)
def test_no_usable_json_is_an_infrastructure_error(stdout: str, match: str) -> None:
    with pytest.raises(InfrastructureError, match=f"operation echo {match}"):
        parse_result("echo", _result(stdout, "some warning"))


# -- typed results -------------------------------------------------------------------------------
FACTS: dict[str, Any] = {
    "computer_name": "DUT-01",
    "build": 22631,
    "ubr": 4460,
    "edition": "Enterprise",
    "product_name": "Windows 11 Enterprise",
    "last_boot_utc": "2026-11-21T12:00:00.000Z",
    "kdp": {"enabled": True, "source": "ntquery"},
    "virtualization_firmware": True,
    "iommu_dma_protection_available": None,
    "secure_boot": True,
    "test_signing": False,
    "bitlocker_disable_external_dma_under_lock": None,
    "dmaguard_policy": 1,
}
DEVICE: dict[str, Any] = {
    "instance_id": "PCI\\VEN_144D&DEV_A808\\4&1",
    "friendly_name": "NVMe",
    "class": "SCSIAdapter",
    "present": True,
    "status": "OK",
    "problem_code": 0,
    "dma_policy": 2,
    "dma_policy_key": "DEVPKEY_Device_DmaRemappingPolicy",
    "service": "stornvme",
    "lower_filters": [],
    "upper_filters": ["flt"],
    "driver_stack": ["flt", "stornvme"],
    "inf_name": "oem3.inf",
    "last_arrival_utc": "2026-11-21T12:00:01.5Z",
    "last_removal_utc": None,
}


def test_host_facts_good_shape() -> None:
    facts = HostFacts.from_json("host_facts", FACTS)
    assert facts.build == 22631 and facts.kdp.source is KdpSource.NTQUERY
    assert facts.last_boot_utc == datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
    assert facts.iommu_dma_protection_available is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"build": "22631"}, r"result.build = '22631', expected an integer"),
        ({"build": True}, r"result.build = True, expected an integer"),
        ({"secure_boot": 1}, r"result.secure_boot = 1, expected true or false or null"),
        (
            {"last_boot_utc": "yesterday"},
            r"result.last_boot_utc = .yesterday., expected a UTC ISO 8601 timestamp",
        ),
        ({"kdp": {"enabled": None, "source": "guess"}}, r"result.kdp.source = 'guess'"),
        ({"kdp": []}, r"result.kdp = \[\], expected an object"),
    ],
)
def test_host_facts_bad_shapes(change: dict[str, Any], match: str) -> None:
    with pytest.raises(InfrastructureError, match=r"operation host_facts returned " + match):
        HostFacts.from_json("host_facts", {**FACTS, **change})


def test_missing_key_and_non_object() -> None:
    facts = dict(FACTS)
    del facts["edition"]
    with pytest.raises(InfrastructureError, match="returned result without 'edition'"):
        HostFacts.from_json("host_facts", facts)
    with pytest.raises(InfrastructureError, match="returned result = \\[1\\], expected an object"):
        FileHash.from_json("file_hash", [1])
    with pytest.raises(InfrastructureError, match="64 hexadecimal digits"):
        FileHash.from_json("file_hash", {"path": "x", "exists": True, "size": 1, "sha256": "ab"})


def test_pnp_device_started_and_blocked() -> None:
    (dev,) = PnpDevice.list_from_json("pnp_devices", {"devices": [DEVICE]})
    assert dev.started and not dev.blocked and dev.class_name == "SCSIAdapter"
    assert dev.driver_stack == ("flt", "stornvme")
    blocked = PnpDevice.from_json("pnp_devices", {**DEVICE, "status": "Error", "problem_code": 55})
    assert blocked.blocked and not blocked.started
    absent = PnpDevice.from_json("pnp_devices", {**DEVICE, "present": False})
    assert not absent.started
    with pytest.raises(InfrastructureError, match=r"result.devices\[0\].upper_filters"):
        PnpDevice.list_from_json("pnp_devices", {"devices": [{**DEVICE, "upper_filters": [1]}]})


def test_crash_evidence_and_bugcheck_description() -> None:
    d = {
        "bugchecks": [
            {
                "time_utc": "2026-11-21T12:03:00Z",
                "stop_code": 0xE6,
                "parameters": [0x26, 0, 0xFFFFC30A1B2C3D40, 0],
                "dump_path": "C:\\Windows\\MEMORY.DMP",
            }
        ],
        "unexpected_shutdowns": [{"time_utc": "2026-11-21T12:03:30Z"}],
        "dumps": [
            {"path": "C:\\Windows\\MEMORY.DMP", "size": 10, "modified_utc": "2026-11-21T12:04:00Z"}
        ],
        "setupapi_tail": ">>> [Device Install]",
    }
    ev = CrashEvidence.from_json("crash_evidence", d)
    assert ev.crashed and ev.bugchecks[0].describe() == (
        "bugcheck 0x000000E6 (0x26, 0x0, 0xFFFFC30A1B2C3D40, 0x0)"
    )
    bad = {**d, "bugchecks": [{**d["bugchecks"][0], "parameters": [1, 2, 3]}]}
    with pytest.raises(InfrastructureError, match="expected a list of 4 integers"):
        CrashEvidence.from_json("crash_evidence", bad)


def _late_1001(*shutdowns: dict[str, object]) -> CrashEvidence:
    """WER's 1001 for an 0xE6, with the given Kernel-Power 41 events beside it."""
    return CrashEvidence.from_json(
        "crash_evidence",
        {
            "bugchecks": [
                {
                    "time_utc": "2026-11-21T12:05:00Z",
                    "stop_code": 0xE6,
                    "parameters": [0x26, 1, 2, 3],
                    "dump_path": None,
                }
            ],
            "unexpected_shutdowns": list(shutdowns),
            "dumps": [],
            "setupapi_tail": "",
        },
    )


def test_a_late_1001_of_a_reported_crash_is_not_new_but_a_crash_again_is() -> None:
    e6 = (0xE6, (0x26, 1, 2, 3))
    assert not _late_1001().without_late_reports({e6}).crashed  # the late report alone
    assert _late_1001().without_late_reports(set()).crashed  # nothing reported: a crash
    assert _late_1001().without_late_reports({(0xE6, (0x26, 9, 9, 9))}).crashed
    again = {
        "time_utc": "2026-11-21T12:04:00Z",
        "bugcheck_code": 0xE6,
        "parameters": [0x26, 1, 2, 3],
    }
    assert _late_1001(again).without_late_reports({e6}).bugchecks  # its own 41 came first
    other = {**again, "bugcheck_code": 0xD1}
    late = _late_1001(other).without_late_reports({e6})
    assert not late.bugchecks and late.crashed  # the 1001 is old; the 0xD1 from 41 is new
    no_code = {"time_utc": "2026-11-21T12:04:00Z"}  # a 41 read without its stop code
    assert _late_1001(no_code).without_late_reports({e6}).bugchecks


def test_other_results() -> None:
    r = InstallResult.from_json(
        "driver_install",
        {
            "exit_code": 3010,
            "outcome": "reboot_required",
            "published_name": "oem7.inf",
            "output": "",
        },
    )
    assert r.outcome is InstallOutcome.REBOOT_REQUIRED
    with pytest.raises(InfrastructureError, match="one of 'installed', 'no_device'"):
        InstallResult.from_json("driver_uninstall", {"exit_code": 1, "outcome": "ok", "output": ""})
    v = VerifierState.from_json(
        "verifier_state",
        {
            "pending": {"flags": 0x80, "drivers": ["a.sys"]},
            "active": {"flags": None, "drivers": []},
            "reboot_pending": True,
        },
    )
    assert v.pending.drivers == ("a.sys",) and v.active.flags is None
    s = SessionInfo.from_json(
        "session_state", {"state": "locked", "user": "lab\\t", "session_id": 1}
    )
    assert s.state.value == "locked"
    p = ParseCheck.from_json(
        "ps_parse", {"results": {"a": [], "b": [{"line": 3, "column": 1, "message": "x"}]}}
    )
    assert not p.ok and p.results["b"][0].line == 3
    probe = StorageProbeResult.from_json(
        "storage_probe",
        {
            "ok": True,
            "drive_letter": "E",
            "disk_number": 2,
            "bytes": 1048576,
            "write_mb_s": 120,
            "read_mb_s": 300.5,
            "verified": True,
        },
    )
    assert probe.write_mb_s == 120.0 and probe.reason is None


def test_timestamps() -> None:
    t = parse_utc("2026-11-21T13:00:00.1234567+01:00")
    assert t == datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert format_utc(t) == "2026-11-21T12:00:00.123Z"


# -- transcripts ---------------------------------------------------------------------------------
SECRET = "Pa'ss\"w\\rd ‘x’"


@pytest.mark.parametrize("size", [0, 20_000])  # -EncodedCommand, then stdin
def test_operations_are_transcribed_readably_with_secrets_masked(
    catalog: OperationCatalog, size: int
) -> None:
    params = {"user": "tester", "password": SECRET, "note": "pad " * (size // 4)}
    inv = invocation(catalog.build_invocation("echo", params))
    assert (inv.stdin is None) == (size == 0)
    t = Transcript(Redactor([SECRET]))
    entry = t.record(inv.shown, exit_code=0, stdout="", stderr="", duration_s=0.1)
    assert entry.command.startswith('op echo {"note": ')
    shown = json.loads(entry.command.removeprefix("op echo "))
    assert shown["password"] == MASK and shown["user"] == "tester"
    assert SECRET not in entry.command and "ParamsBase64" not in entry.command


def test_secret_in_an_unlabelled_parameter_is_masked_by_the_redactor(
    catalog: OperationCatalog,
) -> None:
    script = catalog.build_invocation("echo", {"command": f"net use /user:x {SECRET}"})
    t = Transcript(Redactor([SECRET]))
    entry = t.record(script, exit_code=0, stdout="", stderr="", duration_s=0.1)
    assert entry.command == f'op echo {{"command": "net use /user:x {MASK}"}}'


def test_undecodable_parameters_are_withheld() -> None:
    text = "& {\n# Operation: echo\n} -ParamsBase64 'QUJD'"
    assert describe_operation(text) == "op echo <undecodable parameters withheld>"
    assert describe_operation("Write-Output 'x'") == "Write-Output 'x'"


@pytest.mark.parametrize("path", sorted(OPS_DIR.glob("*.ps1")), ids=lambda p: p.stem)
def test_shipped_scripts_name_their_operation(path: Path) -> None:
    text = OperationCatalog().script_text(path.stem)
    assert text.startswith(f"# Operation: {path.stem}\n")
    assert "param([Parameter(Mandatory = $true)][string]$ParamsBase64)" in text
