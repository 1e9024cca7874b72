"""The atlas: what Windows did, measured across runs, cell by cell of the truth table.

Every journal line that observed a plug (any outcome but not-run, lab infrastructure and harness
bugs) is one observation of a cell: the oracle's conditions (build, INF directives, per-device
keys, graphics, port, Verifier DMA, KDP, DMAGuard, session) and what was seen (DEVPKEY, started at
plug, problem code, started after unlock, DMA probe). The atlas counts, per cell, each distinct
behaviour: how often, on which DUTs, in which runs, first and last seen, and whether it agrees
with the oracle's expectation and at which evidence level. It is a lab's own evidence for what
Microsoft left undocumented (the `unverified` cells).

>>> atlas = build_atlas([Path("reports")])  # every run under reports/  # doctest: +SKIP
>>> atlas.cells[0].behaviours[0].count               # doctest: +SKIP
12
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.outcomes import Outcome
from harness.report.journal import Journal, JournalEntry
from harness.report.matrix import cell_of
from harness.report.run_dir import RunDir

SCHEMA_VERSION = 1
#: Outcomes whose journal line holds no observation of Windows.
NOT_OBSERVED = {Outcome.NOT_RUN, Outcome.INFRASTRUCTURE_ERROR, Outcome.HARNESS_BUG}
#: The oracle's inputs, as the journal's `conditions` spell them (build comes from the id).
KEY_FIELDS = (
    "build",
    "inf",
    "device_remapping_supported",
    "device_remapping_flags",
    "graphics",
    "port",
    "verifier_dma",
    "kdp",
    "dmaguard",
    "session",
)
BEHAVIOUR_FIELDS = (
    "observed_devpkey",
    "started_at_plug",
    "problem_code",
    "started_after_unlock",
    "probe",
)


@dataclass
class Behaviour:
    """One distinct thing Windows did in a cell."""

    observed: dict[str, Any]
    agrees: bool
    count: int = 0
    duts: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    first: str = ""
    last: str = ""


@dataclass
class AtlasCell:
    key: dict[str, Any]
    expected: dict[str, Any]
    evidence_level: str
    behaviours: list[Behaviour] = field(default_factory=list)

    @property
    def observations(self) -> int:
        return sum(b.count for b in self.behaviours)

    @property
    def disagrees(self) -> bool:
        return any(not b.agrees for b in self.behaviours)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "expected": self.expected,
            "evidence_level": self.evidence_level,
            "observations": self.observations,
            "disagrees": self.disagrees,
            "behaviours": [asdict(b) for b in self.behaviours],
        }


@dataclass
class Atlas:
    runs: list[str] = field(default_factory=list)
    cells: list[AtlasCell] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "runs": self.runs,
            "observations": sum(c.observations for c in self.cells),
            "cells": [c.to_json() for c in self.cells],
        }


def cell_key(build: int | str, conditions: Mapping[str, Any]) -> dict[str, Any]:
    """The atlas key of a plug under `conditions` on `build` (journal spelling)."""
    inf = conditions.get("inf") or ["absent"]
    return {
        "build": int(build),
        "inf": [str(v) for v in inf],
        "device_remapping_supported": str(conditions.get("device_remapping_supported", "absent")),
        "device_remapping_flags": str(conditions.get("device_remapping_flags", "absent")),
        "graphics": bool(conditions.get("graphics", False)),
        "port": str(conditions.get("port", "")),
        "verifier_dma": str(conditions.get("verifier_dma", "")),
        "kdp": str(conditions.get("kdp", "")),
        "dmaguard": str(conditions.get("dmaguard", "")),
        "session": str(conditions.get("session", "")),
    }


def _build_of(scenario: str) -> int | None:
    parts = scenario.split(".")
    if len(parts) < 2:
        return None
    digits = parts[1].rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else None


def _expected(entry: JournalEntry) -> dict[str, Any]:
    e = entry.extra.get("expected") or {}
    return {
        "observed_devpkey": e.get("devpkey"),
        "started_at_plug": e.get("starts_at_plug"),
        "problem_code": None if e.get("starts_at_plug") else e.get("problem_code"),
        "started_after_unlock": e.get("starts_after_unlock"),
    }


def _agrees(observed: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    for name, want in expected.items():
        got = observed.get(name)
        if want is None or got is None:
            continue
        if name == "observed_devpkey" and want == 0 and got is None:
            continue
        if got != want:
            return False
    return True


def run_dirs(paths: Iterable[Path]) -> list[RunDir]:
    """Each path that is a run directory, and every run directory directly under the others
    (a reports folder); `latest` links are not counted twice."""
    found: dict[Path, RunDir] = {}
    for p in paths:
        if (p / "run.json").is_file():
            found.setdefault(p.resolve(), RunDir(p))
            continue
        if not p.is_dir():
            raise ConfigError(f"{p}: neither a run directory nor a reports folder")
        for run_json in sorted(p.glob("*/run.json")):
            if not run_json.parent.is_symlink():
                found.setdefault(run_json.parent.resolve(), RunDir(run_json.parent))
    return list(found.values())


def journals(paths: Iterable[Path]) -> Iterator[tuple[str, list[JournalEntry]]]:
    """(run name, journal entries) of each run directory found in `paths`."""
    for rd in run_dirs(paths):
        try:
            yield rd.path.name, Journal(rd.journal).read()
        except HarnessError:
            continue  # a run whose journal is unreadable adds nothing, it does not stop the atlas


def build_atlas(
    paths: Iterable[Path], more: Iterable[tuple[str, list[JournalEntry]]] = ()
) -> Atlas:
    """The atlas of every observation in the run directories found in `paths`, and in `more`
    (runs read elsewhere, e.g. the coordinator's; a run already found in `paths` is not
    counted twice)."""
    atlas = Atlas()
    cells: dict[str, AtlasCell] = {}
    for name, entries in itertools.chain(journals(paths), more):
        if not entries or name in atlas.runs:
            continue
        atlas.runs.append(name)
        for entry in entries:
            build = _build_of(entry.scenario)
            if entry.outcome in NOT_OBSERVED or build is None or not entry.extra.get("observed"):
                continue
            _add(cells, name, build, entry)
    atlas.cells = sorted(cells.values(), key=lambda c: json.dumps(c.key, sort_keys=True))
    for cell in atlas.cells:
        cell.behaviours.sort(key=lambda b: -b.count)
    return atlas


def _add(cells: dict[str, AtlasCell], run: str, build: int, entry: JournalEntry) -> None:
    key = cell_key(build, entry.extra.get("conditions") or {})
    k = json.dumps(key, sort_keys=True)
    cell = cells.get(k)
    expected = _expected(entry)
    if cell is None:
        cell = cells[k] = AtlasCell(key, expected, entry.evidence_level)
    seen = cell_of(entry, None)
    observed = {name: getattr(seen, name) for name in BEHAVIOUR_FIELDS}
    behaviour = next((b for b in cell.behaviours if b.observed == observed), None)
    if behaviour is None:
        behaviour = Behaviour(observed, _agrees(observed, cell.expected), first=entry.started)
        cell.behaviours.append(behaviour)
    behaviour.count += 1
    if entry.dut not in behaviour.duts:
        behaviour.duts.append(entry.dut)
    if run not in behaviour.runs:
        behaviour.runs.append(run)
    behaviour.first = min(behaviour.first, entry.started) if behaviour.first else entry.started
    behaviour.last = max(behaviour.last, entry.started)


def load_atlas(path: Path) -> dict[str, Any]:
    """An atlas.json written by `harness atlas`; ConfigError naming the file if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"not an atlas file: {exc}", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ConfigError("not an atlas file: no 'cells' list", path=str(path))
    return data


def find_cell(atlas: Mapping[str, Any], key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The atlas cell with exactly this key, if the lab ever measured it."""
    for cell in atlas.get("cells", []):
        if isinstance(cell, dict) and cell.get("key") == dict(key):
            return cell
    return None


def describe_behaviour(observed: Mapping[str, Any]) -> str:
    """`DEVPKEY 1, blocked at plug (Code 55), started after unlock, DMA probe ok`."""
    parts = [f"DEVPKEY {observed.get('observed_devpkey', '–')}"]
    started = observed.get("started_at_plug")
    if started is True:
        parts.append("started at plug")
    elif started is False:
        parts.append(f"blocked at plug (Code {observed.get('problem_code')})")
    after = observed.get("started_after_unlock")
    if after is not None:
        parts.append("started after unlock" if after else "not started after unlock")
    if observed.get("probe"):
        parts.append(f"DMA probe {observed['probe']}")
    return ", ".join(parts)
