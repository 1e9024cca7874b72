"""The identity of a driver package as its INF declares it, for the DUT facts and the
qualification bundle: DriverVer, Provider, Class (and its GUID), the catalog file, and the
hardware IDs of its models.

Read on the controller from the package's own INF (the bytes whose SHA-256 the facts record),
so it is recorded while the package is installed and stays after teardown removes it.

>>> inf_identity(Path("lab_config/packages/dmalab_nvme_inf2.inf"))["class"]   # doctest: +SKIP
'SCSIAdapter'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.domain.inf import read_inf
from harness.errors import HarnessError


def inf_identity(inf_path: Path) -> dict[str, Any]:
    """`driver_ver`, `provider`, `class`, `class_guid`, `catalog`, `hardware_ids` of the INF;
    `identity_error` instead when the INF cannot be read any more."""
    try:
        info = read_inf(inf_path)
    except (HarnessError, OSError, ValueError) as exc:
        return {"identity_error": f"{inf_path.name}: {exc}"}
    hardware_ids = sorted({h for m in info.models for h in m.hardware_ids})
    return {
        "driver_ver": info.driver_ver,
        "provider": info.provider,
        "class": info.class_name,
        "class_guid": info.class_guid,
        "catalog": info.catalog_file,
        "hardware_ids": hardware_ids,
    }
