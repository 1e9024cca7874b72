"""Lab inventory: schema, file/line errors, cross-checks, capabilities, YAML gotchas."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config.lab import load_lab
from harness.config.yaml_loader import load_yaml, load_yaml_text
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "lab_config" / "packages"

# A minimal real (non-virtual) lab. Line numbers matter for the tests below.
LAB = """\
duts:
  tb-01:
    address: 10.0.0.10
    transport:
      kind: winrm
      scheme: https
      auth: ntlm
    credentials:
      username: lab
      password: env:LAB_PW
    os_build: 22631
    edition: Enterprise
    kdp:
      declared: on
      firmware_control: lenovo-wmi
    ports:
      tb4:
        kind: external
        switch: sw
        channel: 1
        device: nvme
    session_control:
      lock: scheduled-task
      unlock: hid-keyboard
      keyboard: kbd
instruments:
  sw:
    kind: scpi-switch
    resource: TCPIP0::10.0.0.5::5025::SOCKET
  kbd:
    kind: hid-keyboard
    resource: ASRL/dev/ttyACM0::INSTR
devices:
  nvme:
    hardware_id: PCI\\VEN_144D&DEV_A808*
    class: SCSIAdapter
    dma_probe:
      kind: storage
      volume_label: X
driver_packages:
  pkg:
    path: PKGDIR/dmalab_nvme_inf2.inf
    expected_signer: Microsoft Windows Hardware Compatibility Publisher
"""


def write(tmp_path: Path, text: str, name: str = "lab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("PKGDIR", PACKAGES.as_posix()), encoding="utf-8")
    return path


def lab_error(tmp_path: Path, text: str, **kw: bool) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_lab(path, **kw)
    return str(info.value).replace(str(path), "lab.yaml")


def test_minimal_lab_loads(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, LAB))
    dut = lab.duts["tb-01"]
    assert dut.transport.port == 5986
    assert dut.kdp.declared is OnOff.ON
    assert dut.baseline.dmaguard is DmaGuardPolicy.ABSENT
    assert lab.capabilities("tb-01") == {
        "external-port",
        "kdp",
        "kdp-control",
        "windows11",
        "hid-unlock",
    }
    assert str(dut.credentials.password) == "env:LAB_PW" if dut.credentials else False


@pytest.mark.parametrize("name", ["virtual.yaml"])
def test_shipped_lab_validates(name: str) -> None:
    lab = load_lab(ROOT / "lab_config" / name)
    assert set(lab.duts) == {"tb-01", "m2-01"}
    assert lab.is_virtual("tb-01")
    assert lab.duts["tb-01"].os_build == 22631
    assert lab.duts["m2-01"].os_build == 19045
    assert "external-port" in lab.capabilities("tb-01")
    assert "exposed-port" in lab.capabilities("m2-01")
    assert "kdp-control" not in lab.capabilities("m2-01")
    for name in lab.driver_packages:
        assert lab.read_package(name).models


def test_example_lab_validates_without_file_checks() -> None:
    path = ROOT / "lab_config" / "example_lab.yaml"
    lab = load_lab(path, check_files=False)
    assert not lab.is_virtual("x1-tb4")
    assert "egpu-capable" in lab.capabilities("x1-tb4")
    with pytest.raises(ConfigError, match="ca_file: file not found"):
        load_lab(path)


def test_unknown_key_names_file_line_and_parent_path(tmp_path: Path) -> None:
    text = LAB.replace("      auth: ntlm\n", "      auth: ntlm\n      usr: admin\n")
    assert lab_error(tmp_path, text).splitlines()[0] == (
        "lab.yaml:8: duts.tb-01.transport: unknown key 'usr'"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert lab_error(tmp_path, LAB + "extra: 1\n") == "lab.yaml:44: unknown key 'extra'"


def test_wrong_enum_value(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("scheme: https", "scheme: htps"))
    assert msg.startswith("lab.yaml:6: duts.tb-01.transport.scheme: ")
    assert "'http' or 'https'" in msg and "'htps'" in msg


def test_wrong_discriminator(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("kind: winrm", "kind: telnet"))
    assert msg.startswith("lab.yaml:4: duts.tb-01.transport: ")
    assert "'winrm'" in msg and "'ssh'" in msg


def test_wrong_type(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("os_build: 22631", "os_build: latest"))
    assert msg.startswith("lab.yaml:11: duts.tb-01.os_build: ")
    assert "integer" in msg


def test_build_before_kdp_is_refused(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("os_build: 22631", "os_build: 16299"))
    assert msg.startswith("lab.yaml:11: duts.tb-01.os_build: build 16299 predates")


def test_missing_key(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("    edition: Enterprise\n", ""))
    assert msg == "lab.yaml:2: duts.tb-01: missing required key 'edition'"


def test_all_errors_reported_first_line_first(tmp_path: Path) -> None:
    text = LAB.replace("scheme: https", "scheme: htps").replace("channel: 1", "channel: one")
    lines = lab_error(tmp_path, text).splitlines()
    assert lines[0].startswith("lab.yaml:6: duts.tb-01.transport.scheme:")
    assert lines[1].startswith("lab.yaml:20: duts.tb-01.ports.tb4.channel:")


@pytest.mark.parametrize("value", ["hunter2", "Secr3t!pass", "env:1BAD", "12345", "keyring:nouser"])
def test_literal_secret_is_refused_without_echo(tmp_path: Path, value: str) -> None:
    msg = lab_error(tmp_path, LAB.replace("env:LAB_PW", value))
    assert msg.startswith("lab.yaml:10: duts.tb-01.credentials.password: ")
    assert "env:" in msg and "file:" in msg and "keyring:" in msg
    assert value not in msg


def test_secret_named_key_anywhere_must_be_reference(tmp_path: Path) -> None:
    text = LAB.replace(
        "      volume_label: X\n", "      volume_label: X\n      api_key: s3cr3t-value\n"
    )
    msg = lab_error(tmp_path, text)
    assert msg.startswith("lab.yaml:40: devices.nvme.dma_probe.api_key: a literal secret")
    assert "s3cr3t-value" not in msg


def test_secret_reference_in_unknown_key_is_only_unknown(tmp_path: Path) -> None:
    text = LAB.replace("      volume_label: X\n", "      volume_label: X\n      token: env:TOK\n")
    assert "unknown key 'token'" in lab_error(tmp_path, text)


def test_on_off_stay_strings() -> None:
    doc = load_yaml_text("a: on\nb: off\nc: yes\nd: no\ne: true\nf: false\ng: On\n", "x.yaml")
    assert doc.data == {
        "a": "on",
        "b": "off",
        "c": "yes",
        "d": "no",
        "e": True,
        "f": False,
        "g": "On",
    }


def test_boolean_where_on_off_expected(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("declared: on", "declared: true"))
    assert msg.startswith("lab.yaml:14: duts.tb-01.kdp.declared: ")
    assert "'on' or 'off'" in msg


def test_duplicate_key_with_line(tmp_path: Path) -> None:
    text = LAB.replace("      auth: ntlm\n", "      auth: ntlm\n      auth: basic\n")
    assert lab_error(tmp_path, text) == (
        "lab.yaml:8: duts.tb-01.transport: duplicate key 'auth' (first defined on line 7)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "lab.yaml:1: expected a mapping of keys at the top level, found a list"),
        ("", "lab.yaml:1: the file is empty: expected a mapping"),
        (
            "just a string\n",
            "lab.yaml:1: expected a mapping of keys at the top level, found a single value",
        ),
        ("duts: [\n", "lab.yaml:2: invalid YAML"),
        ("duts:\n  a: 1\n b: 2\n", "lab.yaml:3: invalid YAML"),
    ],
)
def test_not_a_lab(tmp_path: Path, text: str, expected: str) -> None:
    assert lab_error(tmp_path, text).startswith(expected)


def test_binary_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_lab(bad)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_lab(tmp_path / "nope.yaml")


def test_line_map_covers_lists() -> None:
    doc = load_yaml_text("a:\n  - x\n  - y: 1\n", "x.yaml")
    assert doc.lines[("a", 1, "y")] == 3
    assert doc.line_of(("a", 1, "zzz")) == 3


def test_wiring_checks(tmp_path: Path) -> None:
    assert "lab.yaml:19: duts.tb-01.ports.tb4.switch: instrument 'kbd' is a hid-keyboard" in (
        lab_error(tmp_path, LAB.replace("switch: sw", "switch: kbd"))
    )
    assert "lab.yaml:21: duts.tb-01.ports.tb4.device: unknown device 'nvmx'" in (
        lab_error(tmp_path, LAB.replace("device: nvme", "device: nvmx"))
    )
    assert "lab.yaml:25: duts.tb-01.session_control.keyboard: instrument 'sw' is a scpi-switch" in (
        lab_error(tmp_path, LAB.replace("keyboard: kbd", "keyboard: sw"))
    )


def test_channel_wired_twice(tmp_path: Path) -> None:
    second = "      tb4b:\n        kind: external\n        switch: sw\n        channel: 1\n        device: nvme\n"
    text = LAB.replace("    session_control:\n", second + "    session_control:\n")
    msg = lab_error(tmp_path, text)
    assert msg == (
        "lab.yaml:25: duts.tb-01.ports.tb4b.channel: switch 'sw' channel 1 is already wired "
        "to duts.tb-01.ports.tb4"
    )


def test_hid_unlock_needs_keyboard(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("      keyboard: kbd\n", ""))
    assert msg.startswith("lab.yaml:22: duts.tb-01.session_control: unlock: hid-keyboard needs")


def test_basic_over_http_needs_allow_unencrypted(tmp_path: Path) -> None:
    text = LAB.replace("scheme: https", "scheme: http").replace("auth: ntlm", "auth: basic")
    assert "basic auth over http" in lab_error(tmp_path, text)
    ok = text.replace("auth: basic", "auth: basic\n      allow_unencrypted: true")
    assert load_lab(write(tmp_path, ok)).duts["tb-01"].transport.port == 5985


def test_real_winrm_dut_needs_credentials(tmp_path: Path) -> None:
    text = LAB.replace("    credentials:\n      username: lab\n      password: env:LAB_PW\n", "")
    assert lab_error(tmp_path, text) == (
        "lab.yaml:2: duts.tb-01: missing required key 'credentials' (a real WinRM DUT)"
    )


def test_transport_files_relative_to_lab(tmp_path: Path) -> None:
    text = LAB.replace("auth: ntlm", "auth: ntlm\n      ca_file: certs/ca.pem")
    assert "duts.tb-01.transport.ca_file: file not found" in lab_error(tmp_path, text)
    load_lab(write(tmp_path, text), check_files=False)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("x")
    load_lab(write(tmp_path, text))


def test_ssh_real_dut_needs_known_hosts(tmp_path: Path) -> None:
    text = LAB.replace(
        "      kind: winrm\n      scheme: https\n      auth: ntlm\n", "      kind: ssh\n"
    )
    assert "missing required key 'known_hosts'" in lab_error(tmp_path, text)


def test_driver_package_problems(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("dmalab_nvme_inf2.inf", "nope.inf"))
    assert msg.startswith("lab.yaml:42: driver_packages.pkg.path: file not found")
    bad = tmp_path / "bad.inf"
    bad.write_text("[Version]\nClass = %Undefined%\n")
    msg = lab_error(tmp_path, LAB.replace("PKGDIR/dmalab_nvme_inf2.inf", "bad.inf"))
    assert msg.startswith(f"{bad}:2: ")
    assert "driver package 'pkg'" in msg


def test_probe_fields_per_kind(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("volume_label: X", "target: 10.0.0.1"))
    assert "lab.yaml:39: devices.nvme.dma_probe: unknown key 'target'" in msg
    assert "missing required key 'volume_label'" in msg


def test_bad_visa_resource(tmp_path: Path) -> None:
    msg = lab_error(tmp_path, LAB.replace("TCPIP0::10.0.0.5::5025::SOCKET", "10.0.0.5:5025"))
    assert msg.startswith("lab.yaml:29: instruments.sw.resource: '10.0.0.5:5025' is not a VISA")


def test_virtual_section_consistency(tmp_path: Path) -> None:
    text = (ROOT / "lab_config" / "virtual.yaml").read_text()
    text = text.replace("path: packages/", f"path: {PACKAGES.as_posix()}/")
    text = text.replace("[packages/", f"[{PACKAGES.as_posix()}/")
    load_lab(write(tmp_path, text))
    msg = lab_error(tmp_path, text.replace("      build: 19045", "      build: 19044"))
    assert "duts.m2-01.os_build: os_build 19045 differs from virtual.duts.m2-01.build 19044" in msg
    msg = lab_error(
        tmp_path, text.replace("    m2-01:\n      build: 19045", "    m2-02:\n      build: 19045")
    )
    assert "virtual DUT 'm2-02' is not in duts" in msg
    assert "DUT 'm2-01' is not in virtual.duts" in msg


def test_dmaguard_int_and_names(tmp_path: Path) -> None:
    text = LAB.replace(
        "      keyboard: kbd\n", "      keyboard: kbd\n    baseline:\n      dmaguard: 1\n"
    )
    assert (
        load_lab(write(tmp_path, text)).duts["tb-01"].baseline.dmaguard
        is DmaGuardPolicy.AFTER_LOGIN
    )
    msg = lab_error(tmp_path, LAB.replace("  tb-01:", "  tb.01:"))
    assert "invalid name 'tb.01'" in msg


_VIRTUAL = (ROOT / "lab_config" / "virtual.yaml").read_text().splitlines()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.text(max_size=300),
        st.tuples(
            st.integers(0, len(_VIRTUAL) - 1),
            st.sampled_from(["", "  x: 1", "- a", "}{", "  &a [*a]", "\t", "key: [on, 1, null]"]),
        ).map(lambda t: "\n".join([*_VIRTUAL[: t[0]], t[1], *_VIRTUAL[t[0] + 1 :]])),
    )
)
def test_fuzz_lab_only_config_errors(tmp_path: Path, data: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(
        data.replace("path: packages/", f"path: {PACKAGES.as_posix()}/"), encoding="utf-8"
    )
    with contextlib.suppress(ConfigError):
        load_lab(path)


def test_load_yaml_reads_shipped_files() -> None:
    assert "duts" in load_yaml(ROOT / "lab_config" / "virtual.yaml").data


def _virtual_with(tmp_path: Path, extra: str) -> Path:
    """The shipped virtual lab with `extra` appended under `virtual:` (paths kept absolute)."""
    text = (ROOT / "lab_config" / "virtual.yaml").read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    return write(tmp_path, text + extra)


def test_virtual_fault_must_name_a_known_dut_or_instrument(tmp_path: Path) -> None:
    path = _virtual_with(
        tmp_path,
        "  faults:\n    - {kind: reboot-hang, dut: nope}\n    - {kind: switch-error}\n"
        "    - {kind: enumeration-failure, dut: tb-01, port: m2-slot}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_lab(path)
    text = str(info.value)
    assert "reboot-hang needs 'dut:'" in text and "switch-error needs 'instrument:'" in text
    assert "DUT 'tb-01' has no port 'm2-slot'" in text
    assert f"{path}:" in text


def test_virtual_trusted_root_must_exist(tmp_path: Path) -> None:
    text = _virtual_with(tmp_path, "").read_text(encoding="utf-8")
    write(tmp_path, text.replace("dmalab-virtual-release-root.cer", "missing.cer"))
    with pytest.raises(ConfigError, match=r"virtual\.trusted_roots\[0\]: file not found"):
        load_lab(tmp_path / "lab.yaml")
