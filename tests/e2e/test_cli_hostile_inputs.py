"""Values that pass a schema but would break a run, refused before any lab action by the real
CLI (`python -m harness`): out-of-range channels and durations, a password the HID keyboard
cannot type, plans too large to expand, INF files too large to read, and driver packages that
name files outside their folder. Each is exit 2 with `FILE:LINE: KEY` (issue 18)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config.model import MAX_DURATION_S, MAX_INSTRUMENT_TIMEOUT_S
from harness.config.scenarios import MAX_SCENARIOS
from harness.config.yaml_loader import load_yaml
from harness.domain.inf import MAX_INF_BYTES

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "testplans" / "smoke.yaml"


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def lab_copy(tmp_path: Path, change: Any = None) -> Path:
    """lab_config/ copied (the packages with it), virtual.yaml changed by `change(data)`."""
    folder = tmp_path / "lab"
    shutil.copytree(ROOT / "lab_config", folder, symlinks=True)
    lab = folder / "virtual.yaml"
    data = load_yaml(lab).data  # the harness's YAML 1.2 reading: `on` stays a string
    if change is not None:
        change(data)
    lab.write_text(yaml.safe_dump(data, sort_keys=False))
    return lab


def refused(result: subprocess.CompletedProcess[str], file: Path, key: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(rf"{re.escape(str(file))}:\d+: {re.escape(key)}", result.stderr), result.stderr
    return result.stderr


def test_channel_zero_refused(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["duts"]["tb-01"]["ports"]["tb4"]["channel"] = 0

    lab = lab_copy(tmp_path, change)
    refused(harness("lab", "validate", str(lab)), lab, "duts.tb-01.ports.tb4.channel")


def test_mcci_switch_has_two_channels(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["instruments"]["switch-1"]["kind"] = "mcci-usb4-switch"
        d["instruments"]["switch-1"].pop("channels")
        d["virtual"]["instruments"]["switch-1"]["kind"] = "mcci-usb4-switch"
        d["duts"]["tb-01"]["ports"]["tb4"]["channel"] = 3

    lab = lab_copy(tmp_path, change)
    err = refused(harness("lab", "validate", str(lab)), lab, "duts.tb-01.ports.tb4.channel")
    assert "channels 1..2" in err


@pytest.mark.parametrize("value", [".inf", ".nan", str(MAX_INSTRUMENT_TIMEOUT_S * 10_000)])
def test_instrument_timeout_bounded(tmp_path: Path, value: str) -> None:
    lab = lab_copy(tmp_path)
    text = lab.read_text()
    assert text.count("timeout_s: 5") == 3
    lab.write_text(text.replace("timeout_s: 5", f"timeout_s: {value}", 1))
    err = refused(harness("lab", "validate", str(lab)), lab, "instruments.switch-1.timeout_s")
    assert f"less than or equal to {MAX_INSTRUMENT_TIMEOUT_S}" in err


@pytest.mark.parametrize("value", ["1e10", ".inf", ".nan"])
def test_plan_durations_bounded(tmp_path: Path, value: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        SMOKE.read_text()
        .replace("scenario_s: 900", f"scenario_s: {value}")
        .replace("retries:", f"  run_s: {value}\nretries:")
    )
    result = harness("plan", "show", str(plan), "--lab", str(ROOT / "lab_config/virtual.yaml"))
    err = refused(result, plan, "timeouts.scenario_s")
    assert f"less than or equal to {MAX_DURATION_S}" in err


def test_password_the_keyboard_cannot_type(tmp_path: Path) -> None:
    secret = "Pässw0rd-geheim"

    def change(d: dict[str, Any]) -> None:
        d["duts"]["tb-01"]["credentials"] = {"username": "lab", "password": "env:DMALAB_PW_T18"}

    lab = lab_copy(tmp_path, change)
    result = harness("lab", "validate", str(lab), env={"DMALAB_PW_T18": secret})
    err = refused(result, lab, "duts.tb-01.credentials.password")
    assert "printable ASCII" in err
    assert secret not in result.stdout + result.stderr
    assert "ä" not in result.stdout + result.stderr
    ok = harness("lab", "validate", str(lab), env={"DMALAB_PW_T18": "Passw0rd-geheim"})
    assert ok.returncode == 0, ok.stderr


def test_plan_too_large_refused_before_expansion(tmp_path: Path) -> None:
    ports = 40

    def change(d: dict[str, Any]) -> None:
        d["instruments"]["switch-1"]["channels"] = ports + 8
        tb = d["duts"]["tb-01"]["ports"]
        for i in range(ports):
            tb[f"p{i}"] = {"kind": "external", "switch": "switch-1", "channel": 9 + i}
            tb[f"p{i}"]["device"] = "nvme-tb"
        for i in range(ports):
            d["driver_packages"][f"pk{i}"] = dict(d["driver_packages"]["nvme-inf0"])

    lab = lab_copy(tmp_path, change)
    plan = tmp_path / "huge.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "name": "huge",
                "purpose": "manual",
                "duts": {"names": ["tb-01"]},
                "devices": ["nvme-tb"],
                "driver_packages": [f"pk{i}" for i in range(ports)],
                "matrix": {
                    "kdp": ["on", "off"],
                    "dmaguard": ["absent", "0", "1", "2"],
                    "verifier_dma": ["on", "off"],
                    "test_signing": ["on", "off"],
                    "session": ["unlocked", "locked", "no-user"],
                },
            }
        )
    )
    result = harness("plan", "show", str(plan), "--lab", str(lab), "--json")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    assert str(plan) in result.stderr
    assert f"more than the limit of {MAX_SCENARIOS}" in result.stderr


def test_inf_show_of_dev_zero_is_bounded(tmp_path: Path) -> None:
    link = tmp_path / "zero.inf"
    link.symlink_to("/dev/zero")
    result = harness("inf", "show", str(link))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert str(link) in result.stderr and f"larger than {MAX_INF_BYTES} bytes" in result.stderr


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "catalog"])
def test_package_naming_files_outside_refused(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "controller-secret.txt"
    outside.write_text("not for the DUT\n")
    lab = lab_copy(tmp_path)
    inf = lab.parent / "packages" / "dmalab_nvme_inf0.inf"
    text = inf.read_text(encoding="utf-8-sig", errors="replace")
    if how == "catalog":
        bad = "CatalogFile = ..\\..\\controller-secret.txt"
        text = re.sub(r"(?im)^CatalogFile\s*=.*$", lambda _: bad, text)
    else:
        name = {
            "dotdot": "..\\..\\controller-secret.txt",
            "absolute": str(outside),
            "symlink": "leak.txt",
        }[how]
        if how == "symlink":
            (inf.parent / "leak.txt").symlink_to(outside)
        entry = f"[SourceDisksFiles]\n{name} = 1"
        text = re.sub(r"(?im)^\[SourceDisksFiles\]\s*$", lambda _: entry, text)
        if "[SourceDisksFiles]" not in text:
            text += f"\n[SourceDisksFiles]\n{name} = 1\n"
    inf.write_text(text, encoding="utf-8")
    result = harness("lab", "validate", str(lab))
    err = refused(result, lab, "driver_packages.nvme-inf0")
    assert "outside the package folder" in err
    assert "not for the DUT" not in result.stdout + result.stderr
