"""`harness inf show FILE [--json]` end to end: in process (CliRunner) and as the installed script."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli.main import app
from tests.corpora import corpus

LSI = ("storage", "miniports", "lsi_u3", "src", "lsi_u3.inf")
NETVADAPTER = ("network", "netadaptercx", "netvadapter", "km", "netvadapter.inf")


def _sample(*parts: str) -> Path:
    return corpus("inf-samples").joinpath(*parts)


OPTED_IN = """\
[Version]
Signature = "$Windows NT$"
Class = SCSIAdapter
ClassGuid = {4D36E97B-E325-11CE-BFC1-08002BE10318}
Provider = %Mfg%
DriverVer = 05/06/2025,1.0.0.0
CatalogFile = nvme_tb.cat

[Manufacturer]
%Mfg% = Models, NTamd64.10.0...26100

[Models.NTamd64.10.0...26100]
%Desc% = Inst, PCI\\VEN_1E0F&DEV_0007

[Inst.NT]
[Inst.NT.HW]
AddReg = Dma.Reg
[Dma.Reg]
HKR, "DMA Management", "RemappingSupported", 0x00010001, 1
HKR, "DMA Management", "RemappingFlags", 0x00010001, 0x00000001

[Inst.NT.Services]
AddService = nvme_tb, %SPSVCINST_ASSOCSERVICE%, Svc

[Svc]
ServiceBinary = %13%\\nvme_tb.sys
AddReg = Svc.Reg
[Svc.Reg]
HKR, Parameters, DmaRemappingCompatible, %REG_DWORD%, 2

[Strings]
Mfg = "Contoso"
Desc = "Contoso Thunderbolt NVMe"
SPSVCINST_ASSOCSERVICE = 0x00000002
REG_DWORD = 0x00010001
"""

MALFORMED = "[Version]\r\nClass = Net\r\n\r\n[Manufacturer\r\n%Mfg% = Models\r\n"

runner = CliRunner()


def _harness() -> list[str]:
    return [sys.executable, "-m", "harness"]


def _check_shape(data: dict[str, Any]) -> None:
    assert set(data) == {
        "class",
        "class_guid",
        "graphics",
        "provider",
        "driver_ver",
        "catalog_file",
        "models",
    }
    for model in data["models"]:
        assert set(model) == {
            "description",
            "hardware_ids",
            "install_section",
            "services",
            "dma_management",
        }
        assert isinstance(model["hardware_ids"], list)
        for service in model["services"]:
            assert set(service) == {"name", "binary", "dma_remapping_compatible"}
        assert set(model["dma_management"]) == {"remapping_supported", "remapping_flags"}


def test_show_json_on_a_sample() -> None:
    result = runner.invoke(app, ["inf", "show", str(_sample(*LSI)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    _check_shape(data)
    assert data["class"] == "SCSIAdapter"
    assert data["graphics"] is False
    assert data["models"][0]["services"] == [
        {"name": "LSI_U3", "binary": "%12%\\lsi_u3.sys", "dma_remapping_compatible": None}
    ]
    assert data["models"][0]["dma_management"] == {
        "remapping_supported": None,
        "remapping_flags": None,
    }


def test_show_json_with_directives(tmp_path: Path) -> None:
    path = tmp_path / "nvme_tb.inf"
    path.write_bytes(codecs.BOM_UTF16_LE + OPTED_IN.replace("\n", "\r\n").encode("utf-16-le"))
    result = runner.invoke(app, ["inf", "show", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    _check_shape(data)
    assert data["provider"] == "Contoso"
    model = data["models"][0]
    assert model["description"] == "Contoso Thunderbolt NVMe"
    assert model["hardware_ids"] == ["PCI\\VEN_1E0F&DEV_0007"]
    assert model["install_section"] == "Inst"
    assert model["services"] == [
        {"name": "nvme_tb", "binary": "%13%\\nvme_tb.sys", "dma_remapping_compatible": 2}
    ]
    assert model["dma_management"] == {"remapping_supported": 1, "remapping_flags": 1}


def test_show_text_summary(tmp_path: Path) -> None:
    path = tmp_path / "nvme_tb.inf"
    path.write_text(OPTED_IN, encoding="cp1252")
    result = runner.invoke(app, ["inf", "show", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "SCSIAdapter",
        "Contoso",
        "05/06/2025,1.0.0.0",
        "nvme_tb.cat",
        "Contoso Thunderbolt NVMe",
        "PCI\\VEN_1E0F&DEV_0007",
        "nvme_tb",
        "%13%\\nvme_tb.sys",
        "DmaRemappingCompatible 2",
        "RemappingSupported 1",
        "RemappingFlags 1",
    ):
        assert text in out


def test_show_text_on_a_graphics_sample() -> None:
    path = _sample("video", "KMDOD", "Sample", "sampledisplay.inf")
    result = runner.invoke(app, ["inf", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert "Display" in result.stdout
    assert "Graphics:        yes" in result.stdout
    assert "KDODSamp" in result.stdout


def test_malformed_file_exit_2_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.inf"
    path.write_bytes(MALFORMED.encode())
    result = runner.invoke(app, ["inf", "show", str(path), "--json"])
    assert result.exit_code == 2
    assert f"{path}:4:" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_missing_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "missing.inf"
    result = runner.invoke(app, ["inf", "show", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert "Traceback" not in result.output


def test_not_an_inf_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    result = runner.invoke(app, ["inf", "show", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert "[Version]" in result.stderr


@pytest.mark.parametrize("as_json", [True, False])
def test_installed_script_on_utf16_sample(as_json: bool) -> None:
    args = [*_harness(), "inf", "show", str(_sample(*NETVADAPTER))] + (
        ["--json"] if as_json else []
    )
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    if as_json:
        data = json.loads(proc.stdout)
        _check_shape(data)
        assert data["class"] == "Net"
        assert {s["name"] for m in data["models"] for s in m["services"]} == {"netvadapter"}
    else:
        assert "netvadapter" in proc.stdout


def test_installed_script_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.inf"
    path.write_bytes(MALFORMED.encode())
    proc = subprocess.run(
        [*_harness(), "inf", "show", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{path}:4:" in proc.stderr
    assert "closing ']'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
