"""Reading operation results (harness.windows.shape, .results): the rules every result type obeys.

Strict as JSON is read, unknown fields ignored, an absent nullable field is null, timestamps in
UTC, and a wrong shape is an `InfrastructureError` naming the operation and the field.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.windows.results import (
    AutologonState,
    BugCheck,
    CertificateState,
    CrashEvidence,
    DriverInfo,
    FileHash,
    PnpDevice,
    SessionInfo,
    SignatureInfo,
    ToolRun,
    VerifierSettings,
    VerifierState,
)
from harness.windows.shape import JsonObject, parse_utc

DEVICE: dict[str, Any] = {
    "instance_id": "PCI\\VEN_1",
    "present": True,
    "status": "OK",
    "problem_code": 0,
    "dma_policy": None,
    "dma_policy_key": "k",
    "lower_filters": [],
    "upper_filters": [],
    "driver_stack": [],
}


def test_unknown_fields_are_ignored_and_absent_nullable_fields_are_null() -> None:
    dev = PnpDevice.from_json("pnp_devices", {**DEVICE, "added_in_a_later_op": {"x": 1}})
    assert dev.friendly_name is None and dev.class_name is None and dev.last_arrival_utc is None
    assert dev.remapping_supported is None and dev.dma_management is None
    with pytest.raises(InfrastructureError, match="returned result without 'dma_policy_key'"):
        PnpDevice.from_json(
            "pnp_devices", {k: v for k, v in DEVICE.items() if k != "dma_policy_key"}
        )


def test_the_class_alias_and_the_dma_management_key() -> None:
    dma = {"remapping_supported": 1, "remapping_flags": None}
    dev = PnpDevice.from_json("pnp_devices", {**DEVICE, "class": "Net", "dma_management": dma})
    assert dev.class_name == "Net" and dev.remapping_supported == 1 and dev.remapping_flags is None
    with pytest.raises(InfrastructureError, match=r"result.class = 3, expected a string or null"):
        PnpDevice.from_json("pnp_devices", {**DEVICE, "class": 3})
    bad = {**DEVICE, "dma_management": {"remapping_supported": "1"}}
    with pytest.raises(
        InfrastructureError,
        match=r"result.dma_management.remapping_supported = '1', expected an integer or null",
    ):
        PnpDevice.from_json("pnp_devices", bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T12:00:00Z", datetime(2026, 11, 21, 12, tzinfo=timezone.utc)),
        ("2026-11-21T14:30:00.5+02:30", datetime(2026, 11, 21, 12, 0, 0, 500000, timezone.utc)),
        ("2026-11-21T12:00:00.1234567Z", datetime(2026, 11, 21, 12, 0, 0, 123456, timezone.utc)),
    ],
)
def test_timestamps_become_utc(text: str, expected: datetime) -> None:
    stamp = parse_utc(text)
    assert stamp == expected and stamp.tzinfo is timezone.utc


@pytest.mark.parametrize("text", ["2026-11-21T12:00:00", "2026-11-21", "yesterday", ""])
def test_timestamps_without_a_zone_or_a_time_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)
    with pytest.raises(InfrastructureError, match="expected a UTC ISO 8601 timestamp"):
        PnpDevice.from_json("pnp_devices", {**DEVICE, "last_arrival_utc": text})


def test_a_number_is_not_a_timestamp_nor_a_string() -> None:
    with pytest.raises(InfrastructureError, match="last_arrival_utc = 1700000000, expected a UTC"):
        PnpDevice.from_json("pnp_devices", {**DEVICE, "last_arrival_utc": 1700000000})
    with pytest.raises(InfrastructureError, match=r"result.status = 0, expected a string$"):
        PnpDevice.from_json("pnp_devices", {**DEVICE, "status": 0})
    with pytest.raises(
        InfrastructureError, match=r"result.problem_code = 1.0, expected an integer"
    ):
        PnpDevice.from_json("pnp_devices", {**DEVICE, "problem_code": 1.0})


def test_sha256_is_lower_cased() -> None:
    h = FileHash.from_json(
        "file_hash", {"path": "p", "exists": True, "size": 1, "sha256": "AB" * 32}
    )
    assert h.sha256 == "ab" * 32
    with pytest.raises(
        InfrastructureError,
        match=r"operation file_hash returned result.sha256 = 'x', expected 64 hexadecimal digits",
    ):
        FileHash.from_json("file_hash", {"path": "p", "exists": True, "size": 1, "sha256": "x"})


def test_nulls_that_mean_a_default() -> None:
    run = ToolRun.from_json(
        "test_signing_set",
        {"exit_code": 0, "reboot_required": True, "output": "", "bitlocker_suspended": None},
    )
    assert run.bitlocker_suspended is False
    state = VerifierState.from_json(
        "verifier_state",
        {"pending": {"drivers": []}, "active": {"drivers": []}, "active_known": None},
    )
    assert state.active_known and state.reboot_pending is None and state.pending.flags is None
    (drv,) = DriverInfo.list_from_json(
        "driver_list",
        {
            "drivers": [
                {
                    "published_name": "oem1.inf",
                    "original_name": "a.inf",
                    "provider": "p",
                    "class_name": "c",
                    "version": "1",
                    "signer": None,
                }
            ]
        },
    )
    assert drv.signer == ""


def test_lists_name_the_element() -> None:
    files = {
        "files": [
            {
                "path": "a",
                "status": "Valid",
                "status_code": 0,
                "signature_type": "Catalog",
                "signer_matches": "yes",
            }
        ]
    }
    with pytest.raises(
        InfrastructureError,
        match=r"operation driver_signature returned result.files\[0\].signer_matches = 'yes', "
        "expected true or false$",
    ):
        SignatureInfo.list_from_json("driver_signature", files)
    with pytest.raises(InfrastructureError, match=r"result.files = \{\}, expected a list of obj"):
        SignatureInfo.list_from_json("driver_signature", {"files": {}})


def test_session_state_unknown_is_none_and_null_is_refused() -> None:
    info = SessionInfo.from_json("session_state", {"state": "unknown"})
    assert info.state is None and info.user is None
    with pytest.raises(
        InfrastructureError, match=r"result.state = None, expected one of 'no-user'"
    ):
        SessionInfo.from_json("session_state", {"state": None})
    with pytest.raises(InfrastructureError, match=r"'locked', 'unlocked', 'unknown'$"):
        SessionInfo.from_json("session_state", {"state": "away"})


def test_autologon_state_reads_its_three_fields_and_refuses_a_string_flag() -> None:
    on = AutologonState.from_json(
        "autologon_state", {"enabled": True, "user": "labuser", "password_in_registry": True}
    )
    assert (on.enabled, on.user, on.password_in_registry) == (True, "labuser", True)
    off = AutologonState.from_json(
        "autologon_state", {"enabled": False, "password_in_registry": False}
    )
    assert off.user is None and not off.enabled
    with pytest.raises(InfrastructureError, match=r"autologon_state.*result.enabled = '1'"):
        AutologonState.from_json(
            "autologon_state", {"enabled": "1", "user": None, "password_in_registry": False}
        )


EVIDENCE: dict[str, Any] = {"bugchecks": [], "dumps": [], "setupapi_tail": ""}


def test_a_kernel_power_stop_code_is_a_bugcheck() -> None:
    shutdowns = [
        {"time_utc": "2026-11-21T12:03:30Z", "bugcheck_code": 0, "parameters": [0, 0, 0, 0]},
        {"time_utc": "2026-11-21T12:09:00Z", "bugcheck_code": 0xE6, "parameters": [1, 2, 3, 4]},
    ]
    ev = CrashEvidence.from_json("crash_evidence", {**EVIDENCE, "unexpected_shutdowns": shutdowns})
    assert len(ev.unexpected_shutdowns) == 2 and ev.crashed and not ev.bugchecks
    assert ev.shutdown_bugchecks == (
        BugCheck(
            datetime(2026, 11, 21, 12, 9, tzinfo=timezone.utc),
            0xE6,
            (1, 2, 3, 4),
            None,
            "kernel-power-41",
        ),
    )
    coded = [{"time_utc": "2026-11-21T12:09:00Z", "bugcheck_code": 0xE6}]
    with pytest.raises(
        InfrastructureError, match=r"result.unexpected_shutdowns\[0\] without 'parameters'"
    ):
        CrashEvidence.from_json("crash_evidence", {**EVIDENCE, "unexpected_shutdowns": coded})


def test_certificates_by_upper_case_thumbprint() -> None:
    d = {
        "imported": 1,
        "certificates": [
            {"thumbprint": "ab12", "stores": {"Root": True, "TrustedPublisher": False, "My": True}}
        ],
    }
    state = CertificateState.from_json("cert_provision", d)
    assert state.stores == {"AB12": {"Root": True, "TrustedPublisher": False}}
    assert state.missing == {"AB12": ("TrustedPublisher",)}
    d["certificates"][0]["stores"] = {"Root": True}
    with pytest.raises(
        InfrastructureError, match=r"result.certificates\[0\].stores without 'TrustedPublisher'"
    ):
        CertificateState.from_json("cert_provision", d)


def test_single_fields() -> None:
    assert JsonObject("dmaguard_get", {}).ointeger("policy") is None
    assert JsonObject("session_lock", {"requested": True}).flag("requested")
    with pytest.raises(InfrastructureError, match=r"result.requested = 1, expected true or false"):
        JsonObject("session_lock", {"requested": 1}).flag("requested")
    with pytest.raises(InfrastructureError, match=r"operation pnp_rescan returned result without"):
        JsonObject("pnp_rescan", {}).integer("exit_code")
    with pytest.raises(InfrastructureError, match=r"result = 'x', expected an object"):
        JsonObject("pnp_rescan", "x")


def test_constructed_values_are_checked_and_frozen() -> None:
    s = VerifierSettings(0x80, ("a.sys",))
    assert s == VerifierSettings(0x80, ("a.sys",)) and hash(s) == hash(
        VerifierSettings(0x80, ("a.sys",))
    )
    with pytest.raises(ValueError):
        VerifierSettings(True, ())  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        s.flags = 1  # type: ignore[misc]
