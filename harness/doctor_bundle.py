"""A support bundle: what `harness lab doctor --bundle FILE` writes for a lab to send back.

One zip file holding the doctor's table (text and JSON), every DUT's transcript of remote calls,
the lab file, and the controller's versions; every member is passed through a redactor that knows
each secret the lab references (DUT passwords, keyboard PINs, ...), on top of the transcripts' own
redaction, so the bundle can be attached to a ticket as it is.

>>> write_bundle(Path("doctor.zip"), lab, lab_path, checks, transcripts, connector)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import harness
from harness.config.lab import Lab
from harness.config.secrets import SecretRef
from harness.doctor import Check, render
from harness.errors import HarnessError
from harness.lab.connect import LabConnector
from harness.remote.transcript import Redactor, Transcript

#: Distributions whose versions go into the bundle (the ones that talk to the DUTs).
VERSIONED = ("pywinrm", "pyspnego", "paramiko", "pyvisa", "pyvisa-py", "pydantic", "pytest")


def _secret_refs(value: Any) -> Iterator[SecretRef]:
    if isinstance(value, SecretRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_refs(getattr(value, name))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _secret_refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _secret_refs(v)


def lab_redactor(lab: Lab, connector: LabConnector) -> Redactor:
    """A redactor for every secret the lab names (those that resolve here) and DUT password."""
    redactor = Redactor()
    for ref in _secret_refs(lab):
        try:
            redactor.add(ref.resolve(lab.base_dir))
        except HarnessError:
            continue  # not resolvable here, so it cannot be in anything recorded here
    for dut in lab.duts:
        try:
            redactor.add(connector.credentials(dut)[1])
        except HarnessError:
            continue
    return redactor


def _versions() -> dict[str, str]:
    found = {"dma-lab-harness": harness.__version__}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def write_bundle(
    path: Path,
    lab: Lab,
    lab_path: Path,
    checks: list[Check],
    transcripts: Mapping[str, Transcript],
    connector: LabConnector,
    *,
    deep: bool,
) -> Path:
    """Write the bundle to `path` (a zip file, replaced if it exists); returns `path`."""
    redact = lab_redactor(lab, connector).redact
    members: dict[str, str] = {
        "README.txt": (
            "Support bundle of `harness lab doctor`"
            f"{' --deep' if deep else ''} for {lab_path.name}, written "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n"
            "doctor.txt / doctor.json: the checks; transcripts/DUT.txt: every remote call "
            "(secrets masked as ***); lab.yaml: the lab file; environment.json: versions.\n"
        ),
        "doctor.txt": render(checks) + "\n",
        "doctor.json": json.dumps(
            [
                {"target": c.target, "check": c.name, "status": c.status.value, "detail": c.detail}
                for c in checks
            ],
            indent=2,
        )
        + "\n",
        "lab.yaml": lab_path.read_text(encoding="utf-8", errors="replace"),
        "environment.json": json.dumps(
            {
                "versions": _versions(),
                "python": sys.version,
                "platform": platform.platform(),
                "virtual_lab": lab.virtual is not None,
            },
            indent=2,
        )
        + "\n",
    }
    for dut, transcript in sorted(transcripts.items()):
        members[f"transcripts/{dut}.txt"] = transcript.render() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, redact(text))
    partial.replace(path)
    return path
