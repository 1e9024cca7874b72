"""`harness expect` and `harness run` end to end: CliRunner in process, and the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.main import app
from harness.domain.policy import FIELDS

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def expect_json(*args: str) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, ["expect", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_expect_json_shape_and_values() -> None:
    j = expect_json("--build", "22631", "--inf", "0", "--port", "external", "--session", "locked")
    assert list(j) == [*FIELDS, "evidence", "reasons"]  # the literal is pinned in test_policy
    assert j["devpkey"] == 1 and j["problem_code"] == 55 and j["starts_after_unlock"] is True
    assert j["devpkey_key"] == "DEVPKEY_Device_DmaRemappingPolicy"


def test_expect_started_device_has_null_after_unlock() -> None:
    j = expect_json("--build", "19045", "--inf", "1", "--session", "no-user")
    assert j["starts_at_plug"] is True
    assert j["problem_code"] is None and j["starts_after_unlock"] is None


def test_expect_every_option() -> None:
    j = expect_json(
        "--build",
        "26100",
        "--inf",
        "0",
        "--inf",
        "absent",
        "--device-remapping-supported",
        "1",
        "--device-remapping-flags",
        "1",
        "--port",
        "exposed",
        "--verifier-dma",
        "on",
        "--kdp",
        "on",
        "--dmaguard",
        "0",
        "--session",
        "no-user",
    )
    # RemappingFlags=1 is conditional; Verifier DMA on promotes it; per-device overrides INF 0
    assert j["devpkey"] == 2 and j["starts_at_plug"] is True


def test_expect_graphics_and_old_build_key() -> None:
    j = expect_json("--build", "17763", "--inf", "1", "--graphics", "--session", "locked")
    assert j["devpkey_key"] == "{83DA6326-97A6-4088-9453-A1923F573B29} 18"
    assert j["starts_at_plug"] is False  # Windows 10 graphics: not remapping-capable


def test_expect_plain_words() -> None:
    r = runner.invoke(app, ["expect", "--build", "22631", "--inf", "2", "--port", "internal"])
    assert r.exit_code == 0
    assert "DEVPKEY_Device_DmaRemappingPolicy = 0" in r.stdout
    assert "may leave the property absent" in r.stdout
    assert "At plug: the device starts." in r.stdout
    assert "§10.2 row 6" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--build", "17000"], "17134"),
        (["--build", "22631", "--inf", "4"], "--inf"),
        (["--build", "22631", "--port", "thunderbolt"], "--port"),
        (["--build", "22631", "--session", "asleep"], "--session"),
        (["--build", "22631", "--dmaguard", "3"], "--dmaguard"),
        (["--build", "22631", "--kdp", "maybe"], "--kdp"),
        (["--build", "22631", "--device-remapping-flags", "2"], "--device-remapping-flags"),
        (["--build", "twenty"], "--build"),
        (["--inf", "1"], "--build"),
        (["--build", "22631", "--verbose"], "--verbose"),
    ],
)
def test_expect_bad_values_exit_2(args: list[str], needle: str) -> None:
    r = runner.invoke(app, ["expect", *args])
    assert r.exit_code == 2
    assert needle in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--dut", "nope"], "no DUT 'nope'"), (["--scenario", "zz*"], "matches 'zz*'")],
)
def test_run_bad_selection_exit_2(extra: list[str], needle: str) -> None:
    lab = str(ROOT / "lab_config/virtual.yaml")
    r = runner.invoke(app, ["run", str(ROOT / "testplans/smoke.yaml"), "--lab", lab, *extra])
    assert r.exit_code == 2
    assert needle in r.output


def test_installed_script_expect_build_error_exit_2() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "harness", "expect", "--build", "16299", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "17134" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
