"""The lab inventory: `load_lab(path) -> Lab`, validated and cross-checked before any lab action.

The schema is in `lab_models.py`. After the schema, the lab is cross-checked: wiring refers to
real switches and devices, a switch channel is wired once, keyboards exist, files exist, driver
packages read as INFs, and the virtual section matches the DUT list. Every problem is a
ConfigError naming the lab file, the line and the key path.

>>> lab = load_lab("lab_config/virtual.yaml")  # doctest: +SKIP
>>> sorted(lab.capabilities("tb-01"))  # doctest: +SKIP
['external-port', 'hid-unlock', 'kdp', 'kdp-control', 'windows11']
"""

from __future__ import annotations

from pathlib import Path

from pydantic import PrivateAttr

from harness.config.lab_models import (
    SWITCH_CHANNELS,
    SWITCH_KINDS,
    Device,
    DriverPackage,
    Dut,
    Instrument,
    LabModel,
    SshTransport,
    WinRmTransport,
    is_typable,
)
from harness.config.model import validate_document
from harness.config.secrets import check_no_literal_secrets
from harness.config.yaml_loader import KeyPath, LoadedYaml, load_yaml
from harness.domain.conditions import OnOff
from harness.domain.inf import InfError, InfInfo, package_paths, read_inf
from harness.errors import ConfigError
from harness.extras import available, is_serial_resource, missing_message

__all__ = ["Device", "DriverPackage", "Dut", "Instrument", "Lab", "load_lab"]


class Lab(LabModel):
    """A validated lab, remembering the file it came from (for paths and error lines)."""

    _source: LoadedYaml | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        return self._source.path if self._source else "<lab>"

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self._source else Path.cwd()

    def resolve_path(self, path: Path) -> Path:
        """A path from the lab file, taken relative to the lab file's directory."""
        path = path.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def line_of(self, key_path: KeyPath) -> int | None:
        return self._source.line_of(key_path) if self._source else None

    def error(self, message: str, key_path: KeyPath = ()) -> ConfigError:
        if self._source is None:
            return ConfigError(message, path=self.path)
        return self._source.error(message, key_path)

    def is_virtual(self, dut: str) -> bool:
        return self.virtual is not None and dut in self.virtual.duts

    def capabilities(self, dut: str) -> frozenset[str]:
        return self.duts[dut].capabilities_set()

    def pool_of(self, dut: str) -> str:
        """The pool a DUT belongs to; a DUT without `pool:` is a pool of its own."""
        return self.duts[dut].pool or dut

    def read_package(self, name: str) -> InfInfo:
        """Read driver package `name`'s INF; problems are ConfigErrors."""
        path = self.resolve_path(self.driver_packages[name].path)
        key = ("driver_packages", name, "path")
        try:
            return read_inf(path)
        except InfError as exc:
            raise ConfigError(
                f"{exc.message} (driver package '{name}', {self.path}:{self.line_of(key)})",
                path=str(path),
                line=exc.line,
            ) from None
        except OSError as exc:
            raise self.error(f"cannot read the INF {path}: {exc.strerror or exc}", key) from None


def load_lab(path: str | Path, *, check_files: bool = True) -> Lab:
    """Load, validate and cross-check a lab file. `check_files=False` skips file existence."""
    doc = load_yaml(path)
    check_no_literal_secrets(doc)
    lab = validate_document(Lab, doc)
    lab._source = doc
    errors: list[ConfigError] = []
    for check in (_check_virtual, _check_wiring, _check_session, _check_transport, _check_pools):
        errors.extend(check(lab))
    if check_files:  # the lab as used from here: its files, and the packages it needs
        errors.extend(_check_files(lab))
        errors.extend(_check_extras(lab))
    if errors:
        errors.sort(key=lambda e: e.line or 0)
        first = errors[0]
        more = "".join(f"\n{e}" for e in errors[1:])
        raise ConfigError(first.message + more, path=first.path, line=first.line, key=first.key)
    return lab


def _check_virtual(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for name, inst in lab.instruments.items():
        in_virtual = lab.virtual is not None and name in lab.virtual.instruments
        if inst.resource == "virtual" and not in_virtual:
            errors.append(
                lab.error(
                    f"instrument '{name}' has resource 'virtual' but is not in virtual.instruments",
                    ("instruments", name, "resource"),
                )
            )
    if lab.virtual is None:
        return errors
    for name, vinst in lab.virtual.instruments.items():
        key = ("virtual", "instruments", name)
        real = lab.instruments.get(name)
        if real is None:
            errors.append(lab.error(f"virtual instrument '{name}' is not in instruments", key))
        elif real.kind != vinst.kind:
            errors.append(lab.error(f"kind {vinst.kind} differs from instruments.{name}", key))
    for name, vdut in lab.virtual.duts.items():
        key = ("virtual", "duts", name)
        dut = lab.duts.get(name)
        if dut is None:
            errors.append(lab.error(f"virtual DUT '{name}' is not in duts", key))
            continue
        if dut.os_build != vdut.build:
            errors.append(
                lab.error(
                    f"os_build {dut.os_build} differs from virtual.duts.{name}.build {vdut.build}",
                    ("duts", name, "os_build"),
                )
            )
        if dut.kdp.firmware_control != vdut.firmware:
            errors.append(
                lab.error(
                    f"firmware_control {dut.kdp.firmware_control} differs from "
                    f"virtual.duts.{name}.firmware {vdut.firmware}",
                    ("duts", name, "kdp", "firmware_control"),
                )
            )
        if dut.kdp.declared is OnOff.ON and not vdut.kdp_capable:
            errors.append(
                lab.error(
                    f"kdp declared on, but virtual.duts.{name}.kdp_capable is false",
                    ("duts", name, "kdp", "declared"),
                )
            )
    errors.extend(_check_faults(lab))
    for name in lab.duts:
        if name not in lab.virtual.duts:
            errors.append(
                lab.error(
                    f"DUT '{name}' is not in virtual.duts (a lab with a virtual section "
                    "is entirely virtual)",
                    ("duts", name),
                )
            )
    return errors


def _check_faults(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    assert lab.virtual is not None
    for i, fault in enumerate(lab.virtual.faults):
        key: KeyPath = ("virtual", "faults", i)
        on_switch = fault.kind in (
            "switch-silent",
            "switch-error",
            "switch-stream",
            "switch-garbage",
        )
        if on_switch and fault.instrument not in lab.virtual.instruments:
            errors.append(
                lab.error(f"{fault.kind} needs 'instrument:' naming a virtual instrument", key)
            )
        if not on_switch and fault.dut not in lab.virtual.duts:
            errors.append(lab.error(f"{fault.kind} needs 'dut:' naming a virtual DUT", key))
        elif fault.port is not None and fault.dut and fault.port not in lab.duts[fault.dut].ports:
            errors.append(lab.error(f"DUT '{fault.dut}' has no port '{fault.port}'", key))
    return errors


def _check_wiring(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    wired: dict[tuple[str, int], str] = {}
    for dut_name, dut in lab.duts.items():
        for port_name, port in dut.ports.items():
            key: KeyPath = ("duts", dut_name, "ports", port_name)
            switch = lab.instruments.get(port.switch)
            if switch is None:
                errors.append(lab.error(f"unknown instrument '{port.switch}'", (*key, "switch")))
            elif switch.kind not in SWITCH_KINDS:
                errors.append(
                    lab.error(
                        f"instrument '{port.switch}' is a {switch.kind}, not a switch",
                        (*key, "switch"),
                    )
                )
            elif (top := _channel_count(switch)) is not None and port.channel > top:
                errors.append(
                    lab.error(
                        f"switch '{port.switch}' ({switch.kind}) has channels 1..{top}, "
                        f"got {port.channel}",
                        (*key, "channel"),
                    )
                )
            if port.device not in lab.devices:
                errors.append(lab.error(f"unknown device '{port.device}'", (*key, "device")))
            where = f"duts.{dut_name}.ports.{port_name}"
            other = wired.setdefault((port.switch, port.channel), where)
            if other != where:
                errors.append(
                    lab.error(
                        f"switch '{port.switch}' channel {port.channel} is already wired to {other}",
                        (*key, "channel"),
                    )
                )
    return errors


def _channel_count(switch: Instrument) -> int | None:
    """The highest channel of a switch: its kind's fixed count, else `channels:` if given."""
    fixed = SWITCH_CHANNELS.get(switch.kind)
    if fixed is not None and switch.channels is not None:
        return min(fixed, switch.channels)
    return fixed if fixed is not None else switch.channels


def _check_session(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for name, dut in lab.duts.items():
        errors.extend(_check_typable_password(lab, name))
        kb = dut.session_control.keyboard
        if kb is None:
            continue
        key = ("duts", name, "session_control", "keyboard")
        inst = lab.instruments.get(kb)
        if inst is None:
            errors.append(lab.error(f"unknown instrument '{kb}'", key))
        elif inst.kind != "hid-keyboard":
            errors.append(lab.error(f"instrument '{kb}' is a {inst.kind}, not a hid-keyboard", key))
    return errors


def _check_typable_password(lab: Lab, name: str) -> list[ConfigError]:
    """With `unlock: hid-keyboard` the password is typed by the keyboard emulator, which types
    printable ASCII only (harness/instruments/hid_keyboard.py): a password it cannot type would
    leave the DUT locked. Checked when the secret can be read now (an unset variable or missing
    file is the run's to report); the message never contains the password."""
    dut = lab.duts[name]
    if dut.session_control.unlock != "hid-keyboard" or dut.credentials is None:
        return []
    try:
        password = dut.credentials.password.resolve(lab.base_dir)
    except ConfigError:
        return []
    if is_typable(password):
        return []
    return [
        lab.error(
            f"the password of secret {dut.credentials.password} has characters the HID keyboard "
            "cannot type (it types printable ASCII only): use an ASCII password or another "
            "unlock method",
            ("duts", name, "credentials", "password"),
        )
    ]


def _check_transport(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for name, dut in lab.duts.items():
        if lab.is_virtual(name):
            continue
        if dut.credentials is None and isinstance(dut.transport, WinRmTransport):
            errors.append(
                lab.error("missing required key 'credentials' (a real WinRM DUT)", ("duts", name))
            )
        if isinstance(dut.transport, SshTransport) and dut.transport.known_hosts is None:
            errors.append(
                lab.error(
                    "missing required key 'known_hosts': host keys of a real DUT are verified",
                    ("duts", name, "transport"),
                )
            )
    return errors


def pool_profile(dut: Dut) -> tuple[object, ...]:
    """What DUTs of one pool must share: the plan expands once for all of them."""
    ports = tuple(sorted((n, p.kind.value, p.device) for n, p in dut.ports.items()))
    sc = dut.session_control
    return (
        dut.os_build,
        dut.kdp.declared,
        dut.kdp.firmware_control != "none",
        ports,
        (sc.lock, sc.unlock),
        dut.baseline,
        dut.capabilities_set(),
    )


def _check_pools(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    first: dict[str, str] = {}
    for name, dut in lab.duts.items():
        if dut.pool is None:
            continue
        key = ("duts", name, "pool")
        if dut.pool in lab.duts and dut.pool != name:
            errors.append(lab.error(f"pool name '{dut.pool}' is the name of another DUT", key))
            continue
        other = first.setdefault(dut.pool, name)
        if other != name and pool_profile(lab.duts[other]) != pool_profile(dut):
            errors.append(
                lab.error(
                    f"DUT '{name}' differs from '{other}' of pool '{dut.pool}' (build, ports, "
                    "KDP control, session control, baseline or capabilities)",
                    key,
                )
            )
    return errors


def _check_extras(lab: Lab) -> list[ConfigError]:
    """Serial-port instruments need pyserial (the `serial` extra), which pyvisa-py imports only
    when the port is opened: said here, before any lab action, naming the extra."""
    if available("serial"):
        return []
    return [
        lab.error(missing_message("serial"), ("instruments", name, "resource"))
        for name, inst in lab.instruments.items()
        if is_serial_resource(inst.resource)
    ]


def _check_files(lab: Lab) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for name, dut in lab.duts.items():
        if lab.is_virtual(name):
            continue  # the virtual lab produces its CA and host keys at start
        t = dut.transport
        files = (
            {"ca_file": t.ca_file}
            if isinstance(t, WinRmTransport)
            else {"known_hosts": t.known_hosts, "key_file": t.key_file}
        )
        for field, value in files.items():
            if value is not None and not lab.resolve_path(value).is_file():
                errors.append(
                    lab.error(
                        f"file not found: {lab.resolve_path(value)}",
                        ("duts", name, "transport", field),
                    )
                )
    for i, root in enumerate(lab.virtual.trusted_roots if lab.virtual else []):
        if not lab.resolve_path(root).is_file():
            errors.append(
                lab.error(
                    f"file not found: {lab.resolve_path(root)}", ("virtual", "trusted_roots", i)
                )
            )
    for name, pkg in lab.driver_packages.items():
        if not lab.resolve_path(pkg.path).is_file():
            errors.append(
                lab.error(
                    f"file not found: {lab.resolve_path(pkg.path)}",
                    ("driver_packages", name, "path"),
                )
            )
            continue
        try:
            lab.read_package(name)
        except ConfigError as exc:
            errors.append(exc)
            continue
        try:  # every file the package names stays inside its folder, checked before any read
            package_paths(lab.resolve_path(pkg.path))
        except InfError as exc:
            errors.append(lab.error(f"driver package '{name}': {exc}", ("driver_packages", name)))
        except OSError as exc:
            errors.append(
                lab.error(
                    f"driver package '{name}': {exc.strerror or exc}", ("driver_packages", name)
                )
            )
    return errors
