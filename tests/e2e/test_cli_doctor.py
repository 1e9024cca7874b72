"""`harness lab doctor` as a user runs it: it starts the virtual lab, checks, stops it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIRTUAL = ROOT / "lab_config" / "virtual.yaml"


def _doctor(lab: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "lab", "doctor", str(lab), "--timeout", "5", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _lab_with(tmp_path: Path, extra: str) -> Path:
    base = (ROOT / "lab_config").as_posix()
    text = VIRTUAL.read_text(encoding="utf-8")
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    path = tmp_path / "lab.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_doctor_on_the_default_lab_passes_as_json() -> None:
    r = _doctor(VIRTUAL, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert {row["status"] for row in rows} == {"OK"}
    assert {(row["target"], row["check"]) for row in rows} >= {
        ("tb-01", "build as declared"),
        ("m2-01", "port m2-slot: nvme-m2 seen"),
        ("switch-1", "identifies"),
    }


def test_doctor_reports_a_device_that_does_not_enumerate(tmp_path: Path) -> None:
    lab = _lab_with(
        tmp_path, "  faults:\n    - {kind: enumeration-failure, dut: tb-01, port: tb4}\n"
    )
    r = _doctor(lab)
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if "port tb4" in x)
    assert "FAIL" in line and "switch-1 channel 1" in line
    assert any("m2-slot" in x and " OK " in x for x in r.stdout.splitlines())


def test_doctor_on_a_bad_lab_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text("duts: {}\n", encoding="utf-8")
    r = _doctor(bad)
    assert r.returncode == 2 and "lab.yaml" in r.stderr


def test_doctor_deep_with_a_bundle_as_a_user_runs_it(tmp_path: Path) -> None:
    import zipfile

    bundle = tmp_path / "support" / "doctor.zip"
    r = _doctor(VIRTUAL, "--deep", "--bundle", str(bundle))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "long request lines arrive whole" in r.stdout
    assert f"support bundle: {bundle}" in r.stderr
    with zipfile.ZipFile(bundle) as zf:
        assert "transcripts/tb-01.txt" in zf.namelist()
    assert not list(bundle.parent.glob("*.partial"))


def test_doctor_deep_reports_a_filtered_token_and_the_display_language(tmp_path: Path) -> None:
    lab = _lab_with(tmp_path, "")
    text = lab.read_text(encoding="utf-8").replace(
        "      boot_time_s: 45\n      quirks: {}\n",
        "      boot_time_s: 45\n      quirks: {elevated: false, locale: de-DE, bitlocker: true}\n",
        1,
    )
    lab.write_text(text, encoding="utf-8")
    r = _doctor(lab, "--deep", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = {(x["target"], x["check"]): x for x in json.loads(r.stdout)}
    token = rows[("tb-01", "elevated (full administrator token)")]
    assert token["status"] == "FAIL" and "LocalAccountTokenFilterPolicy" in token["detail"]
    assert rows[("m2-01", "elevated (full administrator token)")]["status"] == "OK"
    bitlocker = rows[("tb-01", "BitLocker on the OS volume")]
    assert bitlocker["status"] == "OK" and "suspends it for one reboot" in bitlocker["detail"]
    language = rows[("tb-01", "display language")]
    assert language["status"] == "OK" and "de-DE" in language["detail"]
