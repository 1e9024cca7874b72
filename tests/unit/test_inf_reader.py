"""The INF reader (harness.domain.inf): real sample INFs, every legal form of the DMA
directives in every encoding, malformed files, and a property test."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.domain.inf import (
    DmaManagement,
    InfError,
    InfInfo,
    InfService,
    parse_inf,
    read_inf,
)
from tests.corpora import corpus

# relative path -> (class name, graphics, service names in order per model, model count)
EXPECTED: dict[str, tuple[str, bool, set[tuple[str, ...]], int]] = {
    "general/PLX9x5x/sys/pci9x5x.inx": ("Sample", False, {("Pci9x5x",)}, 2),
    "general/pcidrv/kmdf/genpci.inx": ("Sample", False, {("GenPCI",)}, 4),
    "general/toaster/toastpkg/inf/toastpkg.inf": ("TOASTER", False, {("toaster",)}, 1),
    "network/ndis/netvmini/6x/680/netvmini680.inf": ("Net", False, {("NetVMini680",)}, 5),
    "network/netadaptercx/netvadapter/km/netvadapter.inf": (
        "Net",
        False,
        {("netvadapter",)},
        5,
    ),
    "network/wlan/WDI/PLATFORM/WinInf/SDIO/x64/netrtwlans.inf": ("Net", False, {("RtlWlans",)}, 18),
    "storage/class/disk/src/diskdev.inf": ("DiskDrive", False, {("disk",)}, 2),
    "storage/miniports/lsi_u3/src/lsi_u3.inf": ("SCSIAdapter", False, {("LSI_U3",)}, 2),
    "tools/dv/samples/DV-FailDriver-WDM/driver/defect_toastmon.inf": (
        "System",
        False,
        {("Defect_ToastMon",)},
        1,
    ),
    "usb/UcmUcsiAcpiSample/UcmUcsiAcpiSample/UcmUcsiAcpiSample.inf": (
        "UCM",
        False,
        {("UcmUcsiAcpiSample",)},
        1,
    ),
    # the raw PDO model installs a null service (AddService = ,0x2,)
    "usb/kmdf_fx2/driver/osrusbfx2.inx": ("Sample", False, {("osrusbfx2",), ()}, 2),
    # UMDF: the services come from WUDFRD.inf through Include/Needs, which are not followed
    "video/IndirectDisplay/IddSampleDriver/IddSampleDriver.inf": ("Display", True, {()}, 2),
    "video/KMDOD/Sample/sampledisplay.inf": ("Display", True, {("KDODSamp",)}, 4),
}


@pytest.fixture
def samples() -> Path:
    return corpus("inf-samples")


def _sample_files(samples: Path) -> list[Path]:
    return sorted(
        p for p in samples.rglob("*") if p.suffix.lower() in (".inf", ".inx") and p.is_file()
    )


# ------------------------------------------------------------------------------------------
# Real samples
# ------------------------------------------------------------------------------------------


def test_samples_directory_exists_and_every_file_is_expected(samples: Path) -> None:
    found = {p.relative_to(samples).as_posix() for p in _sample_files(samples)}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_sample_reads_with_right_class_and_services(relative: str, samples: Path) -> None:
    class_name, graphics, services, model_count = EXPECTED[relative]
    info = read_inf(samples / relative)
    assert info.class_name == class_name
    assert info.graphics is graphics
    assert len(info.models) == model_count
    assert {tuple(s.name for s in m.services) for m in info.models} == services
    for model in info.models:
        assert model.hardware_ids
        assert model.description and "%" not in model.description
        for service in model.services:
            assert service.binary is not None and service.binary.startswith(("%12%", "%13%"))
            assert service.dma_remapping_compatible is None  # none of the samples has it
        assert model.dma_management == DmaManagement(None, None)
    assert info.provider and "%" not in info.provider
    assert info.catalog_file and info.catalog_file.lower().endswith(".cat")


def test_utf16_sample_is_utf16(samples: Path) -> None:
    path = samples / "network/netadaptercx/netvadapter/km/netvadapter.inf"
    assert path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    info = read_inf(path)
    assert info.provider == "Microsoft"
    assert info.model_for("ROOT\\NETVADAPTER") is not None
    assert info.models[0].services[0].binary == "%12%\\netvadapter.sys"


def test_sample_details(samples: Path) -> None:
    toast = read_inf(samples / "general/toaster/toastpkg/inf/toastpkg.inf")
    assert toast.driver_ver == "09/21/2006,6.0.5736.1"
    assert toast.models[0].install_section == "Toaster_Device"
    wlan = read_inf(samples / "network/wlan/WDI/PLATFORM/WinInf/SDIO/x64/netrtwlans.inf")
    assert wlan.catalog_file == "netrtwlans.cat"  # CatalogFile.NT
    lsi = read_inf(samples / "storage/miniports/lsi_u3/src/lsi_u3.inf")
    assert lsi.model_for("pci\\ven_1000&dev_0021") is lsi.models[1]
    display = read_inf(samples / "video/KMDOD/Sample/sampledisplay.inf")
    assert display.driver_ver == "03/15/2011,0.03.15.0011"
    assert display.model_for("PCI\\CC_03*") is display.models[0]
    assert display.model_for("USB\\*") is None


# ------------------------------------------------------------------------------------------
# Synthetic INFs: every legal form, every encoding
# ------------------------------------------------------------------------------------------

FULL_INF = r"""; A test INF with every legal form; a comment with "quotes and ; inside
[Version]
Signature = "$Windows NT$"
Class     = %ClassName%      ; "quoted ; in a comment
ClassGuid = {4D36E968-E325-11CE-BFC1-08002BE10318}
Provider  = "Contoso ""Labs"" Inc"
DriverVer = 01/02/2024,1.2.3.4
CatalogFile.NTamd64 = contoso64.cat
CatalogFile = contoso.cat

[Manufacturer]
%Mfg% = Contoso, NTamd64, NTamd64.10.0...26100, NTarm64.10.0...26100, NTamd64.10.0.3

[Contoso.NTamd64]
%Old.Desc% = OldInst, PCI\VEN_1234&DEV_0001

[Contoso.NTarm64.10.0...26100]
%Old.Desc% = OldInst, PCI\VEN_1234&DEV_0002

[Contoso.NTamd64.10.0...26100]
%Dev.Desc% = DevInst, \
             PCI\VEN_1234&DEV_5678&SUBSYS_00011234, \
             "PCI\VEN_1234&DEV_5678"
"%Other.Desc%" = OtherInst, PCI\VEN_1234&DEV_9999

[Strings]
ClassName = "Display"
Pct       = "100%%"

[DevInst.NT]
CopyFiles = Files

[DevInst.NTamd64]
CopyFiles = Files

[DevInst.NTamd64.HW]
AddReg = Hw.Reg

[DevInst.NTamd64.Services]
AddService = contoso_filter, 0x0, Filter.Svc
AddService = "contoso", %SPSVCINST_ASSOCSERVICE%, Main.Svc, Main.EventLog

[Main.Svc]
ServiceBinary = %13%\contoso.sys
AddReg = Ignored.Reg, Main.Reg
AddReg = Main2.Reg

[Filter.Svc]
ServiceBinary = %12%\contoso_filter.sys
AddReg = Filter.Reg

[Main.Reg]
HKR, Parameters, DmaRemappingCompatible, 0x00010001, 1

[Main2.Reg]
HKR,"parameters","DmaRemappingCompatible",%REG_DWORD%,"0x2"  ; last one wins

[Ignored.Reg]
HKR, , DmaRemappingCompatible, 0x00010001, 0          ; not under Parameters
HKR, Parameters, DmaRemappingCompatible, 0x00000000, "0" ; REG_SZ: not read by the kernel
HKR, Parameters, Other, 0x10001, 0

[Filter.Reg]
HKR, Parameters, DmaRemappingCompatible, 65537, 0

[Hw.Reg]
HKR, "DMA Management", RemappingSupported, 0x10001, 1
HKR, "DMA Management", "RemappingFlags", 0x00010001, 0x00000001
HKR, , Note, , "a ""quoted"" %Pct% value, with a comma"

[OtherInst]
CopyFiles = Files

[OtherInst.Services]
AddService = other, 0x00000002, Other.Svc

[Other.Svc]
ServiceBinary = "%13%\other.sys"

[Strings.0409]
Mfg        = "Contoso (en-US)"
ClassName  = "WrongIfChosen"

[OldInst.NT]
[Files]
contoso.sys

; a duplicate section: merged with the first one
[Strings]
Mfg         = "Contoso"
Dev.Desc    = "Contoso ""Turbo"" GPU; 50%% off"
Other.Desc  = Contoso Other
Old.Desc    = "Old"
SPSVCINST_ASSOCSERVICE = 0x00000002
REG_DWORD   = 0x00010001
"""


def _check_full(info: InfInfo) -> None:
    assert info.class_name == "Display"
    assert info.graphics is True
    assert info.class_guid == "{4D36E968-E325-11CE-BFC1-08002BE10318}"
    assert info.provider == 'Contoso "Labs" Inc'
    assert info.driver_ver == "01/02/2024,1.2.3.4"
    assert info.catalog_file == "contoso64.cat"
    assert len(info.models) == 2  # NTamd64.10.0...26100 beats NTamd64 and NTamd64.10.0.3
    dev, other = info.models
    assert dev.description == 'Contoso "Turbo" GPU; 50% off'
    assert dev.hardware_ids == (
        "PCI\\VEN_1234&DEV_5678&SUBSYS_00011234",
        "PCI\\VEN_1234&DEV_5678",
    )
    assert dev.install_section == "DevInst"
    assert dev.services == (
        InfService("contoso", "%13%\\contoso.sys", 2),
        InfService("contoso_filter", "%12%\\contoso_filter.sys", 0),
    )
    assert dev.dma_management == DmaManagement(remapping_supported=1, remapping_flags=1)
    assert other.description == "Contoso Other"
    assert other.install_section == "OtherInst"
    assert other.services == (InfService("other", "%13%\\other.sys", None),)
    assert other.dma_management == DmaManagement(None, None)
    assert info.model_for("pci\\ven_1234&dev_5678*") is dev
    assert info.model_for("PCI\\VEN_1234&DEV_9999") is other
    assert info.model_for("PCI\\VEN_1234&DEV_0001") is None


def _encode(text: str, encoding: str, newline: str) -> bytes:
    text = text.replace("\n", newline)
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be-bom":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    if encoding == "utf-8-bom":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode(encoding)


ENCODINGS = ["utf-16-le-bom", "utf-16-be-bom", "utf-8-bom", "utf-8", "cp1252", "ascii"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_full_inf_in_every_encoding(encoding: str, newline: str) -> None:
    _check_full(parse_inf(_encode(FULL_INF, encoding, newline), "full.inf"))


def test_full_inf_to_json_shape() -> None:
    data = parse_inf(FULL_INF.encode()).to_json()
    assert list(data) == [
        "class",
        "class_guid",
        "graphics",
        "provider",
        "driver_ver",
        "catalog_file",
        "models",
    ]
    model = data["models"][0]
    assert list(model) == [
        "description",
        "hardware_ids",
        "install_section",
        "services",
        "dma_management",
    ]
    assert model["services"][0] == {
        "name": "contoso",
        "binary": "%13%\\contoso.sys",
        "dma_remapping_compatible": 2,
    }
    assert model["dma_management"] == {"remapping_supported": 1, "remapping_flags": 1}
    assert data["models"][1]["dma_management"] == {
        "remapping_supported": None,
        "remapping_flags": None,
    }


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8", "utf-8-bom", "utf-16-le-bom"])
def test_non_ascii_strings(encoding: str) -> None:
    text = '[Version]\nClass = Net\nProvider = %P%\n[Strings]\nP = "Contoso Gerätebau – € GmbH"\n'
    assert parse_inf(_encode(text, encoding, "\r\n")).provider == "Contoso Gerätebau – € GmbH"


def test_ansi_bytes_that_cp1252_cannot_decode_fall_back_to_latin1() -> None:
    data = b"[Version]\r\nClass = Net\r\nProvider = Ab\x81cd\r\n"
    assert parse_inf(data).provider == "Ab\x81cd"


def test_utf16_without_bom() -> None:
    text = "[Version]\r\nClass = Net\r\n"
    assert parse_inf(text.encode("utf-16-le")).class_name == "Net"
    assert parse_inf(text.encode("utf-16-be")).class_name == "Net"


def _svc_inf(addreg_line: str, strings: str = "") -> bytes:
    return (
        "[Version]\nClass=Net\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,PCI\\VEN_1\n"
        "[Inst.Services]\nAddService=drv,2,Svc\n[Svc]\nServiceBinary=%12%\\drv.sys\n"
        f"AddReg=Reg\n[Reg]\n{addreg_line}\n[Strings]\n{strings}\n"
    ).encode()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("HKR,Parameters,DmaRemappingCompatible,0x00010001,1", 1),
        ("HKR,Parameters,DmaRemappingCompatible,0x10001,2", 2),
        ("HKR,Parameters,DmaRemappingCompatible,65537,0", 0),
        ("HKR,Parameters,DmaRemappingCompatible,%REG_DWORD%,3", 3),
        ("HKR,Parameters,DmaRemappingCompatible,%Flags%,%Value%", 2),
        ('HKR,"Parameters","DmaRemappingCompatible",0x00010001,2', 2),
        ('"HKR" , "PARAMETERS" , "dmaremappingcompatible" , "0x00010001" , "0x00000001"', 1),
        ("hkr, parameters\\, DmaRemappingCompatible, 0x00010003, 0x1 ; noclobber", 1),
        ("HKR,Parameters,DmaRemappingCompatible,0x00010001,\\\n  1", 1),
        ("HKR,Parameters,DmaRemappingCompatible,0x00000000,1", None),  # REG_SZ
        ("HKR,Parameters,DmaRemappingCompatible,0x00010005,1", None),  # DELVAL
        ("HKR,Parameters\\Sub,DmaRemappingCompatible,0x00010001,1", None),
        ("HKLM,Parameters,DmaRemappingCompatible,0x00010001,1", None),
        (";HKR,Parameters,DmaRemappingCompatible,0x00010001,1", None),
    ],
)
def test_dma_remapping_compatible_forms(line: str, expected: int | None) -> None:
    strings = 'REG_DWORD = 0x00010001\nFlags = "0x10001"\nValue = 2\n'
    info = parse_inf(_svc_inf(line, strings))
    assert info.models[0].services == (InfService("drv", "%12%\\drv.sys", expected),)


def test_directive_in_every_listed_addreg_section_last_wins() -> None:
    text = (
        "[Version]\nClass=Net\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,PCI\\VEN_1\n"
        "[Inst.Services]\nAddService=drv,2,Svc\n[Svc]\nAddReg=A,B\nAddReg=C\n"
        "[A]\nHKR,Parameters,DmaRemappingCompatible,0x10001,0\n[B]\nHKR,,X,0,y\n"
        "[C]\nHKR,Parameters,DmaRemappingCompatible,0x10001,1\n"
    )
    info = parse_inf(text.encode())
    assert info.models[0].services == (InfService("drv", None, 1),)


def test_function_driver_comes_first_and_null_service_is_skipped() -> None:
    text = (
        "[Version]\nClass=Net\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,PCI\\VEN_1\n"
        "[Inst.Services]\nAddService=upper,0,U\nAddService=,2,\nAddService=fn,0x10002,F\n"
        "AddService=lower,0x0,L\n[U]\n[F]\n[L]\n"
    )
    services = parse_inf(text.encode()).models[0].services
    assert [s.name for s in services] == ["fn", "upper", "lower"]


@pytest.mark.parametrize(
    ("manufacturer", "sections", "chosen"),
    [
        ("M = Models", ["Models", "Models.NTamd64"], "Models"),
        ("M = Models, NTamd64", ["Models", "Models.NTamd64"], "Models.NTamd64"),
        ("M = Models, NT", ["Models", "Models.NT"], "Models.NT"),
        ("M = Models, NT, NTamd64", ["Models.NT", "Models.NTamd64"], "Models.NTamd64"),
        ("M = Models, NTx86, NTarm64", ["Models", "Models.NTx86", "Models.NTarm64"], "Models"),
        ("M = Models, NT$ARCH$", ["Models.NT$ARCH$"], "Models.NT$ARCH$"),
        ("M = Models, NT$ARCH$", ["Models.NTamd64"], "Models.NTamd64"),
        (
            "M = Models, NTamd64.10.0...16299, NTamd64.10.0...26100",
            ["Models.NTamd64.10.0...16299", "Models.NTamd64.10.0...26100"],
            "Models.NTamd64.10.0...26100",
        ),
        (
            "M = Models, NTamd64.10.0...26100, NTamd64.10.0...16299",
            ["Models.NTamd64.10.0...16299"],  # the best one does not exist
            "Models.NTamd64.10.0...16299",
        ),
        ("M = Models, NTamd64.10.0.3", ["Models", "Models.NTamd64.10.0.3"], "Models"),  # server
        (
            "M = Models, NTamd64.10.0.1",
            ["Models", "Models.NTamd64.10.0.1"],
            "Models.NTamd64.10.0.1",
        ),
        (
            "M = Models, NTamd64, NTamd64.6.3",
            ["Models.NTamd64", "Models.NTamd64.6.3"],
            "Models.NTamd64.6.3",
        ),
    ],
)
def test_models_section_decoration(manufacturer: str, sections: list[str], chosen: str) -> None:
    body = "".join(f"[{s}]\nD = Inst, HW\\{s.upper()}\n" for s in sections)
    info = parse_inf(f"[Version]\nClass=X\n[Manufacturer]\n{manufacturer}\n{body}".encode())
    assert [m.hardware_ids for m in info.models] == [(f"HW\\{chosen.upper()}",)]


@pytest.mark.parametrize(
    ("sections", "chosen"),
    [
        (["Inst", "Inst.NT", "Inst.NTamd64"], "Inst.NTamd64"),
        (["Inst", "Inst.NT"], "Inst.NT"),
        (["Inst", "Inst.NTx86"], "Inst"),
        (["inst.nt"], "inst.nt"),
    ],
)
def test_install_section_decoration_and_companions(sections: list[str], chosen: str) -> None:
    body = "".join(
        f"[{s}]\n[{s}.HW]\nAddReg={s}.R\n[{s}.R]\n"
        f'HKR,"DMA Management",RemappingSupported,0x10001,{i}\n'
        f"[{s}.Services]\nAddService=svc_{i},2,S\n"
        for i, s in enumerate(sections)
    )
    text = f"[Version]\nClass=X\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,HW\\1\n{body}[S]\n"
    model = parse_inf(text.encode()).models[0]
    index = sections.index(chosen)
    assert model.install_section == "Inst"
    assert [s.name for s in model.services] == [f"svc_{index}"]
    assert model.dma_management == DmaManagement(index, None)


def test_missing_install_section_falls_back_to_its_companions() -> None:
    text = (
        "[Version]\nClass=X\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,HW\\1\n"
        "[Inst.NT.Services]\nAddService=svc,2,S\n[S]\nServiceBinary=%13%\\svc.sys\n"
    )
    model = parse_inf(text.encode()).models[0]
    assert model.services == (InfService("svc", "%13%\\svc.sys", None),)


def test_strings_locale_preference() -> None:
    text = (
        "[Version]\nProvider=%A%\nClass=%B%\nCatalogFile=%C%\n"
        "[Strings.0407]\nA=de\nB=de\nC=de\n[Strings.0409]\nA=en\nB=en\n[Strings]\nA=neutral\n"
    )
    info = parse_inf(text.encode())
    assert (info.provider, info.class_name, info.catalog_file) == ("neutral", "en", "de")


def test_literal_percent_dirids_and_format_tokens() -> None:
    text = '[Version]\nClass=Net\nProvider="%%x%% 100%% %10%\\a %1!u!"\nDriverVer=50% of 100%\n'
    info = parse_inf(text.encode())
    assert info.provider == "%x% 100% %10%\\a %1!u!"
    assert info.driver_ver == "50% of 100%"


def test_keys_and_sections_are_case_insensitive() -> None:
    text = "[VERSION]\nCLASS=Net\nclassguid={x}\n[version]\nPROVIDER=p\n"
    info = parse_inf(text.encode())
    assert (info.class_name, info.class_guid, info.provider) == ("Net", "{x}", "p")
    assert info.graphics is False
    assert info.models == ()


# ------------------------------------------------------------------------------------------
# Malformed INFs
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[Version]\nClass=Net\n[Manufacturer\nM=Models\n", 3, "closing ']'"),
        ('; c\n[Version]\r\nClass=Net\r\nProvider="abc\r\n', 4, "unterminated"),
        ('[Version]\nClass=Net\n; "fine in a comment\nProvider="a""b\n', 4, "unterminated"),
        ("[Version]\nClass=Net\n\n[X]\nA=%Nope%\n[Strings]\nYes=1\n", 5, "%Nope%"),
        ("[Version]\nClass=Net\nA=\\\n  b,\\\n %Nope%\n", 3, "%Nope%"),
        ('[Version]\nClass=Net\n[Strings]\nNope="unterminated\n', 4, "unterminated"),
        (
            "[Version]\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,HW\n[Inst.Services]\n"
            "AddService=a,zz,S\n",
            7,
            "AddService flags",
        ),
        (
            "[Version]\n[Manufacturer]\nM=Models\n[Models]\nD=Inst,HW\n[Inst.Services]\n"
            "AddService=a,2,S\n[S]\nAddReg=R\n[R]\nHKR,Parameters,DmaRemappingCompatible,"
            "0x10001,one\n",
            11,
            "DmaRemappingCompatible",
        ),
    ],
)
def test_malformed_inf_names_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(InfError) as caught:
        parse_inf(text.encode(), "bad.inf")
    assert caught.value.line == line
    assert caught.value.path == "bad.inf"
    assert fragment in caught.value.message
    assert str(caught.value).startswith(f"bad.inf:{line}: ")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world\n",
        b"[Strings]\nA=b\n",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"<html><body>not an inf</body></html>",
    ],
)
def test_not_an_inf(data: bytes) -> None:
    with pytest.raises(InfError) as caught:
        parse_inf(data, "x.inf")
    assert str(caught.value).startswith("x.inf")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (codecs.BOM_UTF16_LE + "[Version]\r\nClass=Net\r\n".encode("utf-16-le") + b"\x00", 3),
        (codecs.BOM_UTF16_LE + "[Version]\r\n".encode("utf-16-le") + b"\x00\xdc", 2),
        (codecs.BOM_UTF16_BE + "[Version]\r\n\r\n".encode("utf-16-be") + b"\xdc\x00", 3),
        (codecs.BOM_UTF8 + b"[Version]\r\nClass=\xff\r\n", 2),
    ],
)
def test_undecodable_file(data: bytes, line: int) -> None:
    with pytest.raises(InfError) as caught:
        parse_inf(data, "u.inf")
    assert caught.value.line == line
    assert "not valid" in caught.value.message


def test_inf_error_str_without_line() -> None:
    assert str(InfError("a.inf", None, "boom")) == "a.inf: boom"
    assert str(InfError("a.inf", 3, "boom")) == "a.inf:3: boom"
    assert isinstance(InfError("a.inf", 3, "boom"), ValueError)


def test_read_inf_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "d.inf"
    path.write_bytes(b"[Version]\n[Oops\n")
    with pytest.raises(InfError, match=r"d\.inf:2: "):
        read_inf(path)
    path.write_bytes(b"[Version]\nClass=Net\n")
    assert read_inf(str(path)).class_name == "Net"


# ------------------------------------------------------------------------------------------
# Property: nothing but InfError, whatever the input
# ------------------------------------------------------------------------------------------

_INF_ALPHABET = st.sampled_from(
    [*'[]%;",=\\ \t\r\n$.x0', "Version", "Strings", "AddReg", "HKR", "Manufacturer"]
)


def _parse_or_inf_error(data: bytes) -> None:
    try:
        info = parse_inf(data, "fuzz.inf")
    except InfError as exc:
        assert str(exc).startswith("fuzz.inf")
    else:
        info.to_json()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_inf_error(data: bytes) -> None:
    _parse_or_inf_error(data)
    _parse_or_inf_error(b"[Version]\n" + data)
    _parse_or_inf_error(codecs.BOM_UTF16_LE + data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_INF_ALPHABET, max_size=80).map("".join), st.text(max_size=60))
def test_random_text_raises_only_inf_error(tokens: str, text: str) -> None:
    for body in (tokens, text, "[Version]\n" + tokens, FULL_INF + tokens):
        for encoding in ("utf-8", "utf-16-le-bom"):
            try:
                data = _encode(body, encoding, "\n")
            except UnicodeEncodeError:  # lone surrogates
                continue
            _parse_or_inf_error(data)
