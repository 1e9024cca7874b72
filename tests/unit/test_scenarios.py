"""Plan expansion: selection, applicability, exclusions, ids, oracle conditions, speed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import harness.config.lab as lab_module
from harness.config.lab import Lab, load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import Scenario, expand
from harness.domain.conditions import DeviceKey, InfValue, OnOff, PortKind, SessionState
from harness.domain.policy import expect
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
VIRTUAL = ROOT / "lab_config" / "virtual.yaml"
PACKAGES = ROOT / "lab_config" / "packages"
SHIPPED = sorted((ROOT / "testplans").glob("*.yaml"))

ID_RE = re.compile(
    r"^(?P<dut>[\w-]+)\.(?P<build>w1[01]-\d+)\.(?P<inf>[\w-]*inf[\dn]+(?:-[\dn])*(?:-dev[\dn](?:f\d)?)?)"
    r"\.(?P<port>external|exposed|internal)(?:-[\w-]+)?\.dv-(?:on|off)\.kdp-(?:on|off)"
    r"\.guard[012x]\.(?:no-user|locked|unlocked)(?:\.ts-on)?$"
)


def plan_file(tmp_path: Path, body: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text("name: t\npurpose: manual\n" + body, encoding="utf-8")
    return path


def lab_file(
    tmp_path: Path, edit: str = "", extra_ports: str = "", extra_devices: str = ""
) -> Path:
    text = VIRTUAL.read_text().replace("path: packages/", f"path: {PACKAGES.as_posix()}/")
    text = text.replace("[packages/", f"[{PACKAGES.as_posix()}/")
    text = text.replace("    session_control:\n", extra_ports + "    session_control:\n", 1)
    text = text.replace("driver_packages:\n", extra_devices + "\ndriver_packages:\n", 1)
    if edit:
        old, new = edit.split(" => ")
        text = text.replace(old, new)
    path = tmp_path / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab() -> Lab:
    return load_lab(VIRTUAL)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_plans_expand_with_unique_wellformed_ids(lab: Lab, path: Path) -> None:
    scenarios = expand(load_plan(path), lab)
    assert scenarios
    ids = [s.id for s in scenarios]
    assert len(set(ids)) == len(ids)
    for s in scenarios:
        assert ID_RE.match(s.id), s.id
        assert expect(s.oracle_conditions()) is not None


def test_expansion_is_deterministic(lab: Lab) -> None:
    path = ROOT / "testplans" / "nightly.yaml"
    assert [s.id for s in expand(load_plan(path), lab)] == [
        s.id for s in expand(load_plan(path), lab)
    ]


def test_qualification_plan_ids(lab: Lab) -> None:
    scenarios = expand(load_plan(ROOT / "testplans" / "tb_release_qualification.yaml"), lab)
    assert {s.dut for s in scenarios} == {"tb-01"}
    assert len(scenarios) == 4 * 2 * 3
    assert "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guard1.locked" in {s.id for s in scenarios}
    assert "driver_signature" in scenarios[0].checks


def test_scenario_fields_and_conditions(tmp_path: Path, lab: Lab) -> None:
    plan = load_plan(
        plan_file(
            tmp_path,
            "duts: {names: [tb-01]}\ndevices: [nvme-tb]\ndriver_packages: [nvme-stack]\n"
            "matrix: {dmaguard: [1], session: [locked], verifier_dma: [on], test_signing: [on]}\n",
        )
    )
    [s] = expand(plan, lab)
    assert s == Scenario(
        id="tb-01.w11-22631.inf1-0.external.dv-on.kdp-on.guard1.locked.ts-on",
        dut="tb-01",
        build=22631,
        device="nvme-tb",
        driver_package="nvme-stack",
        port_name="tb4",
        port=PortKind.EXTERNAL,
        kdp=OnOff.ON,
        dmaguard=s.dmaguard,
        verifier_dma=OnOff.ON,
        test_signing=OnOff.ON,
        session=SessionState.LOCKED,
        inf=(InfValue.V1, InfValue.V0),
        device_remapping_supported=DeviceKey.ABSENT,
        device_remapping_flags=DeviceKey.ABSENT,
        graphics=False,
        checks=s.checks,
    )
    c = s.oracle_conditions()
    assert (c.build, c.inf, c.port, c.verifier_dma, c.kdp, c.session) == (
        22631,
        (InfValue.V1, InfValue.V0),
        PortKind.EXTERNAL,
        True,
        True,
        SessionState.LOCKED,
    )
    assert c.dmaguard.value == "1"
    assert s.conditions_json()["inf"] == ["1", "0"]


@pytest.mark.parametrize(
    ("package", "tag"),
    [
        ("nvme-inf0", "inf0"),
        ("nvme-inf3", "inf3"),
        ("nvme-noinf", "infn"),
        ("nvme-dev1f1", "inf2-dev1f1"),
        ("nvme-stack", "inf1-0"),
    ],
)
def test_inf_tags(tmp_path: Path, lab: Lab, package: str, tag: str) -> None:
    plan = load_plan(
        plan_file(
            tmp_path,
            f"duts: {{names: [tb-01]}}\ndevices: [nvme-tb]\ndriver_packages: [{package}]\n",
        )
    )
    [s] = expand(plan, lab)
    assert s.id == f"tb-01.w11-22631.{tag}.external.dv-off.kdp-on.guardx.unlocked"
    if package == "nvme-dev1f1":
        assert (s.device_remapping_supported, s.device_remapping_flags) == (
            DeviceKey.V1,
            DeviceKey.V1,
        )


def test_ids_name_neither_device_nor_package_when_directives_differ(
    tmp_path: Path, lab: Lab
) -> None:
    plan = load_plan(
        plan_file(
            tmp_path,
            "duts: {names: [tb-01, m2-01]}\ndevices: [nvme-tb, nvme-m2]\n"
            "driver_packages: [nvme-inf2, nvme-noinf]\nmatrix: {port: [external, exposed]}\n",
        )
    )
    ids = [s.id for s in expand(plan, lab)]
    assert ids == [
        "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guardx.unlocked",
        "tb-01.w11-22631.infn.external.dv-off.kdp-on.guardx.unlocked",
        "m2-01.w10-19045.inf2.exposed.dv-off.kdp-on.guardx.unlocked",
        "m2-01.w10-19045.infn.exposed.dv-off.kdp-on.guardx.unlocked",
    ]


def test_package_name_joins_the_id_when_two_packages_declare_the_same(tmp_path: Path) -> None:
    twin = (
        "  nvme-inf2-rebuilt:\n    path: "
        + (PACKAGES / "dmalab_nvme_inf2.inf").as_posix()
        + "\n    expected_signer: Contoso\n"
    )
    lab = load_lab(lab_file(tmp_path, edit="driver_packages:\n => driver_packages:\n" + twin))
    plan = load_plan(
        plan_file(
            tmp_path,
            "duts: {names: [tb-01]}\ndevices: [nvme-tb]\n"
            "driver_packages: [nvme-inf0, nvme-inf2, nvme-inf2-rebuilt]\n",
        )
    )
    ids = [s.id for s in expand(plan, lab)]
    assert ids == [
        "tb-01.w11-22631.inf0.external.dv-off.kdp-on.guardx.unlocked",
        "tb-01.w11-22631.nvme-inf2-inf2.external.dv-off.kdp-on.guardx.unlocked",
        "tb-01.w11-22631.nvme-inf2-rebuilt-inf2.external.dv-off.kdp-on.guardx.unlocked",
    ]


def test_two_ports_of_one_kind_use_port_names(tmp_path: Path) -> None:
    port = "      tb2:\n        kind: external\n        switch: switch-1\n        channel: 3\n        device: nvme-tb2\n"
    device = (
        "  nvme-tb2:\n    hardware_id: PCI\\VEN_144D&DEV_A808*\n    class: SCSIAdapter\n"
        "    dma_probe: {kind: storage, volume_label: TB2}\n"
    )
    lab = load_lab(lab_file(tmp_path, extra_ports=port, extra_devices=device))
    plan = load_plan(
        plan_file(
            tmp_path,
            "duts: {names: [tb-01]}\ndevices: [nvme-tb, nvme-tb2]\ndriver_packages: [nvme-inf2]\n",
        )
    )
    ids = [s.id for s in expand(plan, lab)]
    assert ids == [
        "tb-01.w11-22631.inf2.external-tb4.dv-off.kdp-on.guardx.unlocked",
        "tb-01.w11-22631.inf2.external-tb2.dv-off.kdp-on.guardx.unlocked",
    ]


def test_kdp_applicability(lab: Lab) -> None:
    scenarios = expand(load_plan(ROOT / "testplans" / "nightly.yaml"), lab)
    assert {s.kdp for s in scenarios if s.dut == "m2-01"} == {OnOff.ON}
    assert {s.kdp for s in scenarios if s.dut == "tb-01"} == {OnOff.ON, OnOff.OFF}


def test_kdp_not_applicable_to_named_dut_is_an_error(tmp_path: Path, lab: Lab) -> None:
    path = plan_file(
        tmp_path,
        "duts: {names: [m2-01]}\ndevices: [nvme-m2]\ndriver_packages: [nvme-inf2]\n"
        "matrix: {kdp: [off], port: [exposed]}\n",
    )
    with pytest.raises(ConfigError) as info:
        expand(load_plan(path), lab)
    assert str(info.value).startswith(f"{path}:3: duts.names[0]: DUT 'm2-01' gets no scenario")


def test_exclusions(lab: Lab) -> None:
    scenarios = expand(load_plan(ROOT / "testplans" / "nightly.yaml"), lab)
    off = [s for s in scenarios if s.kdp is OnOff.OFF]
    assert off
    assert all(s.dmaguard.value in ("absent", "1") for s in off)
    assert all(s.session is not SessionState.NO_USER for s in off)
    # tb-01: 7 packages x (kdp on: 4 guards x 2 dv x 3 sessions + kdp off: 2 x 2 x 2)
    assert sum(s.dut == "tb-01" for s in scenarios) == 7 * (24 + 8)
    assert sum(s.dut == "m2-01" for s in scenarios) == 7 * 24


def test_exclusion_by_dut_and_unknown_dut(tmp_path: Path, lab: Lab) -> None:
    body = (
        "duts: {capabilities: [kdp]}\ndevices: [nvme-tb, nvme-m2]\ndriver_packages: [nvme-inf2]\n"
        "matrix: {port: [external, exposed]}\nexclude:\n  - dut: m2-01\n"
    )
    assert {s.dut for s in expand(load_plan(plan_file(tmp_path, body)), lab)} == {"tb-01"}
    path = plan_file(tmp_path, body.replace("dut: m2-01", "dut: m3-01"))
    with pytest.raises(ConfigError, match=r"plan.yaml:8: exclude\[0\].dut: unknown DUT 'm3-01'"):
        expand(load_plan(path), lab)


def test_capability_selection(tmp_path: Path, lab: Lab) -> None:
    base = "devices: [nvme-tb, nvme-m2]\ndriver_packages: [nvme-inf1]\nmatrix: {port: [external, exposed]}\n"
    sel = {
        "[kdp]": {"tb-01", "m2-01"},
        "[external-port]": {"tb-01"},
        "[exposed-port, windows10]": {"m2-01"},
        "[kdp-control]": {"tb-01"},
    }
    for caps, duts in sel.items():
        plan = load_plan(plan_file(tmp_path, f"duts: {{capabilities: {caps}}}\n" + base))
        assert {s.dut for s in expand(plan, lab)} == duts
    path = plan_file(tmp_path, "duts: {capabilities: [per-device-key]}\n" + base)
    with pytest.raises(ConfigError) as info:
        expand(load_plan(path), lab)
    assert str(info.value) == (
        f"{path}:3: duts.capabilities: no DUT in {VIRTUAL} has all of the capabilities per-device-key"
    )
    path = plan_file(tmp_path, "duts:\n  names: [m2-01]\n  capabilities: [external-port]\n" + base)
    with pytest.raises(ConfigError, match=r"plan.yaml:4: duts.names\[0\]: DUT 'm2-01' lacks"):
        expand(load_plan(path), lab)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            "duts: {names: [tb-09]}\ndevices: [nvme-tb]\ndriver_packages: [nvme-inf1]\n",
            r":3: duts.names\[0\]: unknown DUT 'tb-09'",
        ),
        (
            "duts: {names: [tb-01]}\ndevices: [nvme-xx]\ndriver_packages: [nvme-inf1]\n",
            r":4: devices\[0\]: unknown device 'nvme-xx'",
        ),
        (
            "duts: {names: [tb-01]}\ndevices: [nvme-tb]\ndriver_packages:\n  - nvme-inf1\n  - nvme-zz\n",
            r":7: driver_packages\[1\]: unknown driver package 'nvme-zz'",
        ),
    ],
)
def test_bad_references_name_the_plan(tmp_path: Path, lab: Lab, body: str, where: str) -> None:
    path = plan_file(tmp_path, body)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + where):
        expand(load_plan(path), lab)


def test_package_without_model_for_device_is_a_lab_error(tmp_path: Path) -> None:
    lab_path = lab_file(tmp_path, edit="PCI\\VEN_144D&DEV_A808* => PCI\\VEN_1234&DEV_0001*")
    lab = load_lab(lab_path)
    plan = load_plan(
        plan_file(
            tmp_path, "duts: {names: [tb-01]}\ndevices: [nvme-tb]\ndriver_packages: [nvme-inf1]\n"
        )
    )
    with pytest.raises(ConfigError) as info:
        expand(plan, lab)
    msg = str(info.value)
    assert msg.startswith(f"{lab_path}:")
    assert "devices.nvme-tb.hardware_id: driver package 'nvme-inf1' has no model" in msg


def test_inf_read_once_per_package(monkeypatch: pytest.MonkeyPatch, lab: Lab) -> None:
    calls: list[Path] = []
    real = lab_module.read_inf

    def counting(path: Path) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(lab_module, "read_inf", counting)
    plan = load_plan(ROOT / "testplans" / "nightly.yaml")
    expand(plan, lab)
    assert len(calls) == len(plan.driver_packages)
