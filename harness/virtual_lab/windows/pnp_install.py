"""What installing a driver package does to a device and the registry (pnputil `/install`).

`bind_package` runs the package's install sections for one device the way setup does: the
services are created (`AddService`) and their `AddReg` written under
`HKLM\\SYSTEM\\CurrentControlSet\\Services\\<name>`, the `.HW` `AddReg` writes the device's
`Device Parameters\\DMA Management` values, and the device's stack becomes the function driver
plus the package's other services (its filters). `AddReg` only adds values: a value left by an
earlier package stays unless `delete-driver /uninstall` removed the service, as on Windows.

`kernel_refusal` is the kernel-mode code-signing policy at driver load: pnputil stages and
installs a package whose catalog is valid for user mode (a root in LocalMachine Root), but the
kernel loads a binary only when it is validly signed, by its embedded signature or by the
package's installed catalog (its hash a member), under a release root, or under a Root
certificate while test signing is in effect; a broken embedded signature (HashMismatch) is
refused whatever the catalog says. Otherwise the device gets problem code 52
(CM_PROB_UNSIGNED_DRIVER,
https://learn.microsoft.com/windows-hardware/drivers/install/cm-prob-unsigned-driver).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.domain.inf import InfModel
from harness.virtual_lab.catalog import catalog_check
from harness.virtual_lab.signing import SignatureStatus, verify_file
from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.devices import Device
from harness.virtual_lab.windows.driver_store import StagedPackage
from harness.virtual_lab.windows.registry import SERVICES

if TYPE_CHECKING:
    from harness.virtual_lab.windows.machine import WindowsMachine


def model_for(package: StagedPackage, device: Device) -> InfModel | None:
    wanted = {h.lower() for h in device.hardware_ids}
    for model in package.info.models:
        if any(h.lower() in wanted for h in model.hardware_ids):
            return model
    return None


def bind_package(machine: WindowsMachine, device: Device, package: StagedPackage) -> None:
    model = model_for(package, device)
    if model is None:
        return
    reg = machine.registry
    for service in model.services:
        key = f"{SERVICES}\\{service.name}"
        binary = (service.binary or f"{service.name}.sys").split("\\")[-1]
        reg.set(key, "ImagePath", f"\\SystemRoot\\System32\\drivers\\{binary}")
        reg.set(key, "Type", 1)
        if service.dma_remapping_compatible is not None:
            reg.set(
                key + "\\Parameters", "DmaRemappingCompatible", service.dma_remapping_compatible
            )
    dm = rules.device_key(device.instance_id)
    if model.dma_management.remapping_supported is not None:
        reg.set(dm, "RemappingSupported", model.dma_management.remapping_supported)
    if model.dma_management.remapping_flags is not None:
        reg.set(dm, "RemappingFlags", model.dma_management.remapping_flags)
    device.package = package.published_name
    device.stack = tuple(s.name for s in model.services)
    device.description = model.description or device.description


CM_PROB_UNSIGNED_DRIVER = 52


def kernel_refusal(machine: WindowsMachine, package: StagedPackage) -> str | None:
    """Why the kernel would not load the package's binaries (None: it loads them)."""
    roots = list(machine.release_roots)
    if machine.test_signing_active:
        roots += machine.cert_stores["Root"]
    for model in package.info.models:
        for service in model.services:
            binary = (service.binary or f"{service.name}.sys").split("\\")[-1]
            path = next(
                (f for f in package.directory.iterdir() if f.name.lower() == binary.lower()), None
            )
            if path is None:
                continue
            check = verify_file(path, roots)
            if check.status is SignatureStatus.Valid:
                continue
            if check.status is not SignatureStatus.HashMismatch and package.catalog is not None:
                by_catalog = catalog_check(path, package.catalog, roots)
                if by_catalog.status is SignatureStatus.Valid:
                    continue
                check = by_catalog if check.status is SignatureStatus.NotSigned else check
            return f"{binary}: {check.status.name} under the kernel-mode signing policy"
    return None


def unbind(machine: WindowsMachine, package: StagedPackage) -> list[Device]:
    """`/delete-driver /uninstall`: devices lose the driver; its services are deleted."""
    affected = [d for d in machine.devices.values() if d.package == package.published_name]
    for device in affected:
        machine.registry.delete_key(rules.device_key(device.instance_id))
        device.package, device.stack = None, ()
    in_use = {s for d in machine.devices.values() for s in d.stack}
    for model in package.info.models:
        for service in model.services:
            if service.name not in in_use:
                machine.registry.delete_key(f"{SERVICES}\\{service.name}")
    return affected


def verified_services(machine: WindowsMachine, stack: tuple[str, ...]) -> frozenset[str]:
    """Services of `stack` whose image Driver Verifier targets with DMA checking (0x80)."""
    level, images = machine.verifier_active
    if not level & rules.VERIFIER_DMA_FLAG:
        return frozenset()
    out = set()
    for service in stack:
        image = str(machine.registry.get(f"{SERVICES}\\{service}", "ImagePath") or service)
        stem = image.split("\\")[-1].lower().removesuffix(".sys")
        if stem in images and stem not in machine.volatile_only:
            out.add(service.lower())
    return frozenset(out)
