"""Static checks and result parsing for the operations' real-Windows fixes (review F8, F10, F13,
F21, F22). The behaviours themselves are tested through the virtual lab's real endpoints in
tests/integration/test_windows_locale_and_timing.py; these pin what the lab cannot observe: how
many property calls a phantom device costs and how long host_facts can run."""

from __future__ import annotations

import re
from pathlib import Path

from harness.windows.results import CrashEvidence, SessionInfo, VerifierState

OPS = Path(__file__).resolve().parents[2] / "harness" / "windows" / "ops"


def _code(name: str) -> list[str]:
    return [
        line
        for line in (OPS / f"{name}.ps1").read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]


def test_host_facts_runs_no_msinfo32_and_waits_on_no_process() -> None:
    """F22: msinfo32 (a GUI program, up to 180 s) could outlast the 60 s call deadline."""
    code = "\n".join(_code("host_facts"))
    assert "msinfo32" not in code.lower()
    assert "WaitForExit" not in code and "Start-Process" not in code


def test_pnp_devices_asks_for_hardware_ids_only_on_the_patterns_enumerator() -> None:
    """F21: with present_only false, every phantom device cost one CIM call before filtering."""
    code = _code("pnp_devices")
    calls = [i for i, line in enumerate(code) if "DEVPKEY_Device_HardwareIds" in line]
    assert calls, "pnp_devices no longer reads DEVPKEY_Device_HardwareIds at all"
    for i in calls:  # the call, or the `if` it sits in, tests the device's enumerator
        assert "-like $enumerator" in code[i] + code[i - 1], code[i - 1 : i + 1]
    loop = "\n".join(_code("pnp_devices"))
    first_test = loop.index("$matched = ([string]$d.InstanceId -like $pattern)")
    assert first_test < loop.index("DEVPKEY_Device_HardwareIds")


def test_crash_evidence_polls_for_1001_against_a_bound() -> None:
    code = "\n".join(_code("crash_evidence"))
    loop = re.search(r"while \((.*)\) \{", code)
    assert loop is not None and "$until" in loop.group(1)
    assert "report_wait_s" in code and "[Math]::Min(300.0" in code


def test_kernel_power_41_stop_code_counts_as_a_crash() -> None:
    evidence = CrashEvidence.from_json(
        "crash_evidence",
        {
            "bugchecks": [],
            "unexpected_shutdowns": [
                {"time_utc": "2026-12-05T10:00:00.000Z", "bugcheck_code": 0, "parameters": [0] * 4},
                {
                    "time_utc": "2026-12-05T11:00:00.000Z",
                    "bugcheck_code": 0xE6,
                    "parameters": [0x26, 1, 2, 3],
                },
            ],
            "dumps": [],
            "setupapi_tail": "",
        },
    )
    assert evidence.crashed
    assert [b.stop_code for b in evidence.shutdown_bugchecks] == [0xE6]
    assert evidence.shutdown_bugchecks[0].source == "kernel-power-41"
    assert len(evidence.unexpected_shutdowns) == 2
    power_loss = CrashEvidence.from_json(
        "crash_evidence",
        {
            "bugchecks": [],
            "unexpected_shutdowns": [{"time_utc": "2026-12-05T10:00:00.000Z"}],
            "dumps": [],
            "setupapi_tail": "",
        },
    )
    assert not power_loss.crashed


def test_unknown_session_state_and_unknown_verifier_state_parse() -> None:
    info = SessionInfo.from_json(
        "session_state", {"state": "unknown", "user": "LAB\\someone", "session_id": 1}
    )
    assert info.state is None and info.user == "LAB\\someone"
    state = VerifierState.from_json(
        "verifier_state",
        {
            "pending": {"flags": None, "drivers": []},
            "active": {"flags": None, "drivers": []},
            "active_known": False,
            "reboot_pending": None,
        },
    )
    assert not state.active_known and state.reboot_pending is None
