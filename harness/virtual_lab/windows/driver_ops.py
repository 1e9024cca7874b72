"""The virtual DUT's driver-package and PnP operations (docs/windows-operations.md): signatures
as Get-AuthenticodeSignature answers them (catalog first), pnputil's add, delete and enum, the
services' DMA-remapping opt-in, and the devices with their DmaRemappingPolicy (`op_registry`
holds the registry and the shared helpers).
"""

from __future__ import annotations

from typing import Any

from harness.virtual_lab.catalog import authenticode_signature
from harness.virtual_lab.signing import SignatureStatus
from harness.virtual_lab.windows import cert_stores, commands, sources
from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.machine import WindowsMachine
from harness.virtual_lab.windows.op_registry import (
    OperationError,
    iso_or_none,
    local_path,
    need,
    operation,
)
from harness.virtual_lab.windows.registry import SERVICES

INSTALL_OUTCOMES = {
    0: "installed",
    259: "no_device",
    3010: "reboot_required",
    1641: "reboot_initiated",
}
DMA_POLICY_FRIENDLY = "DEVPKEY_Device_DmaRemappingPolicy"
DMA_POLICY_GUID = "{83DA6326-97A6-4088-9453-A1923F573B29} 18"


# -- driver packages ------------------------------------------------------------------------------
@operation
def op_driver_signature(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    expected = need(p, "expected_signer", str)
    # Get-AuthenticodeSignature applies the user-mode policy: LocalMachine Root is trusted
    # whether or not test signing is on. It asks the system catalog database first (the
    # catalogs of staged packages), then the file's own signature.
    roots = list(m.release_roots) + list(m.cert_stores["Root"])
    files = []
    for path in need(p, "paths", list):
        local = local_path(m, str(path))
        if not local.is_file():
            raise OperationError(f"Cannot find path '{path}' because it does not exist.")
        check = authenticode_signature(local, m.store.catalogs(), roots)
        status = check.status
        if status is SignatureStatus.NotTrusted:
            # Get-AuthenticodeSignature reports an untrusted root (CERT_E_UNTRUSTEDROOT) as
            # UnknownError; NotTrusted is for an explicitly distrusted certificate.
            status = SignatureStatus.UnknownError
        files.append(
            {
                "path": path,
                "status": status.name,
                "status_code": int(status),
                "signature_type": check.signature_type.name_ps,
                "signer_subject": check.signer_subject,
                "signer_matches": check.signer_cn == expected,
                "signer_thumbprint": check.signer_thumbprint,
            }
        )
    return {"files": files}


@operation
def op_driver_install(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    prompt = cert_stores.install_prompt(m, local_path(m, need(p, "inf_path", str)))
    if prompt is not None:  # the Windows Security dialog waits in session 0, unanswered
        m.op_wait_s += cert_stores.PROMPT_WAIT_S
        return {"exit_code": 1, "outcome": "failed", "published_name": None, "output": prompt}
    code, text, published = commands.add_driver(m, need(p, "inf_path", str), install=True)
    return {
        "exit_code": code,
        "outcome": INSTALL_OUTCOMES.get(code, "failed"),
        "published_name": published,
        "output": text,
    }


@operation
def op_driver_uninstall(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    code, text = commands.delete_driver(
        m, need(p, "published_name", str), uninstall=True, force=True
    )
    return {"exit_code": code, "outcome": INSTALL_OUTCOMES.get(code, "failed"), "output": text}


#: The English pnputil labels a text-parsing driver_list keys on, and its result fields.
_PNPUTIL_FIELDS = {
    "Published Name": "published_name",
    "Original Name": "original_name",
    "Provider Name": "provider",
    "Class Name": "class_name",
    "Driver Version": "version",
    "Signer Name": "signer",
}


@operation
def op_driver_list(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    if not sources.reads(m, "Get-WindowsDriver", "Win32_PnPSignedDriver"):
        # pnputil /enum-drivers parsed by its English labels: nothing in another language.
        blocks = sources.label_blocks(
            commands.enum_drivers(m), _PNPUTIL_FIELDS, first="Published Name"
        )
        fields = list(_PNPUTIL_FIELDS.values())
        return {"drivers": [{f: b.get(f) for f in fields} for b in blocks]}
    return {
        "drivers": [
            {
                "published_name": pk.published_name,
                "original_name": pk.original_name,
                "provider": pk.provider,
                "class_name": pk.info.class_name,
                "version": (pk.info.driver_ver or "").replace(",", " "),
                "signer": pk.signer,
            }
            for pk in m.store.packages()
        ]
    }


@operation
def op_service_dma_compat(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    service = need(p, "service", str)
    key = f"{SERVICES}\\{service}"
    exists = m.registry.get(key, "ImagePath") is not None or bool(m.registry.values(key))
    params = key + "\\Parameters"
    return {
        "service": service,
        "exists": exists or bool(m.registry.values(params)),
        "dma_remapping_compatible": m.registry.get(params, "DmaRemappingCompatible"),
        "dma_remapping_on_hiber_path": m.registry.get(params, "DmaRemappingOnHiberPath"),
    }


# -- PnP ------------------------------------------------------------------------------------------
@operation
def op_pnp_devices(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    import fnmatch

    pattern = need(p, "hardware_id", str).lower()
    present_only = bool(p.get("present_only", True))
    key = DMA_POLICY_FRIENDLY if m.build >= 18362 else DMA_POLICY_GUID
    found = []
    for d in m.devices.values():
        if d.last_arrival is None or (present_only and not d.present):
            continue
        ids = [h.lower() for h in (*d.hardware_ids, d.instance_id)]
        if not any(fnmatch.fnmatchcase(h, pattern) for h in ids):
            continue
        filters = list(d.stack[1:])
        found.append(
            {
                "instance_id": d.instance_id,
                "friendly_name": d.description,
                "class": d.device_class,
                "present": d.present,
                "status": d.status,
                "problem_code": d.problem_code if d.present else 0,
                "dma_policy": d.dma_policy or None,
                "dma_policy_key": key,
                "service": d.stack[0] if d.stack else None,
                "lower_filters": filters,
                "upper_filters": [],
                "driver_stack": list(d.stack),
                "inf_name": d.package,
                "last_arrival_utc": iso_or_none(d.last_arrival),
                "last_removal_utc": iso_or_none(d.last_removal),
                "dma_management": _dma_management(m, d.instance_id),
            }
        )
    return {"devices": found}


def _dma_management(m: WindowsMachine, instance_id: str) -> dict[str, Any] | None:
    """`Enum\\<instance>\\Device Parameters\\DMA Management`: null when the key has no values."""
    key = rules.device_key(instance_id)
    values = {
        "remapping_supported": m.registry.get(key, "RemappingSupported"),
        "remapping_flags": m.registry.get(key, "RemappingFlags"),
    }
    return values if any(v is not None for v in values.values()) else None


@operation
def op_pnp_rescan(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    commands.rescan(m)
    return {"exit_code": 0}
