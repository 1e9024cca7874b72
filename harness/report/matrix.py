"""The truth-table matrix of one run: driver package × conditions, expected against observed.

Built from a run directory's journal (the last entry of each scenario), its DUT facts and its
Allure results; written as `matrix.json` (this module) and `matrix.html` (`matrix_html.py`).

Per DUT and Windows build, one table: a row per driver package (with the INF directives the
plan gave it), a column per combination of port kind × Kernel DMA Protection × DMAGuard policy ×
Driver Verifier DMA × session state. Each cell is one scenario: the expected and observed
`DEVPKEY_Device_DmaRemappingPolicy`, whether the device started at plug or was blocked (Code 55),
whether it started after unlock, the DMA probe, the outcome, the evidence level of each
expectation, and the id of its Allure test result (`report.html#testresult/<id>`).

>>> m = build_matrix(RunDir(Path("reports/latest")))        # doctest: +SKIP
>>> m.tables[0].rows[0].cells[0].observed_devpkey            # doctest: +SKIP
1
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.report.journal import Journal, JournalEntry
from harness.report.run_dir import RunDir

#: The conditions that make a column, in display order.
COLUMN_KEYS = ("port", "kdp", "dmaguard", "verifier_dma", "session")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Cell:
    scenario: str
    column: str
    outcome: str
    expected_devpkey: int | None
    observed_devpkey: int | None
    #: True started at plug; False not started; None not observed
    started_at_plug: bool | None
    problem_code: int | None
    expected_problem_code: int | None
    started_after_unlock: bool | None
    expected_starts_after_unlock: bool | None
    #: "ok" the probe's DMA worked, "blocked" it did not, None no probe
    probe: str | None
    evidence: dict[str, str]
    #: the scenario's evidence level (Expectation.evidence_level: the one definition)
    evidence_level: str
    message: str
    observations: list[str]
    allure_id: str | None
    duration_s: float


@dataclass
class Row:
    package: str
    directives: str  # e.g. "INF 0" or "INF 2 + RemappingSupported 1"
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Table:
    dut: str
    build: str  # "22631.4460" (facts) or "22631" (scenario id)
    os: str
    columns: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


@dataclass
class Matrix:
    run_id: str
    plan: str
    lab: str
    virtual: bool
    counts: dict[str, int] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}


def column_label(conditions: dict[str, Any]) -> str:
    """`external · KDP on · DMAGuard absent · DV off · locked`."""
    c = conditions
    return " · ".join(
        [
            str(c.get("port", "?")),
            f"KDP {c.get('kdp', '?')}",
            f"DMAGuard {c.get('dmaguard', '?')}",
            f"DV {c.get('verifier_dma', '?')}",
            str(c.get("session", "?")),
        ]
    )


def _directives(conditions: dict[str, Any]) -> str:
    infs = conditions.get("inf") or []
    text = "INF " + "+".join(str(i) for i in infs) if infs else "no directive"
    supported = conditions.get("device_remapping_supported")
    if supported not in (None, "absent"):
        text += f", RemappingSupported {supported}"
    flags = conditions.get("device_remapping_flags")
    if flags not in (None, "absent"):
        text += f", RemappingFlags {flags}"
    return text


def allure_ids(results_dir: Path) -> dict[str, str]:
    """Scenario id -> the Allure report's id of its newest test result (md5 of the result's
    uuid, the id Allure 3 gives a test result and uses in `#testresult/<id>`)."""
    newest: dict[str, tuple[int, str]] = {}
    if not results_dir.is_dir():
        return {}
    for path in results_dir.glob("*-result.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name, uuid, start = str(data["name"]), str(data["uuid"]), int(data.get("start") or 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if name not in newest or start >= newest[name][0]:
            newest[name] = (start, hashlib.md5(uuid.encode("utf-8")).hexdigest())
    return {name: uid for name, (_, uid) in newest.items()}


def _observed(entry: JournalEntry) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    observed = entry.extra.get("observed") or {}
    at_plug = observed.get("at_plug") or {} if isinstance(observed, dict) else {}
    after = observed.get("after_unlock") or {} if isinstance(observed, dict) else {}
    return observed if isinstance(observed, dict) else {}, at_plug, after


def _probe(observed: dict[str, Any], session: str) -> str | None:
    value = observed.get("probe_locked") if session == "locked" else None
    if value is None:
        value = observed.get("probe_ok")
    if value is None:
        return None
    return "ok" if value else "blocked"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def cell_of(entry: JournalEntry, allure_id: str | None) -> Cell:
    conditions = entry.extra.get("conditions") or {}
    expected = entry.extra.get("expected") or {}
    observed, at_plug, after = _observed(entry)
    observations = entry.extra.get("observations") or []
    return Cell(
        scenario=entry.scenario,
        column=column_label(conditions),
        outcome=entry.outcome.value,
        expected_devpkey=_int(expected.get("devpkey")),
        observed_devpkey=_int(at_plug.get("dma_policy")),
        started_at_plug=_bool(at_plug.get("started")),
        problem_code=_int(at_plug.get("problem_code")),
        expected_problem_code=_int(expected.get("problem_code")),
        started_after_unlock=_bool(after.get("started")) if after else None,
        expected_starts_after_unlock=_bool(expected.get("starts_after_unlock")),
        probe=_probe(observed, str(conditions.get("session", ""))),
        evidence={str(k): str(v) for k, v in (expected.get("evidence") or {}).items()},
        evidence_level=entry.evidence_level,
        message=str(entry.extra.get("message") or ""),
        observations=[str(o) for o in observations] if isinstance(observations, list) else [],
        allure_id=allure_id,
        duration_s=entry.duration_s,
    )


def _build_of(entry: JournalEntry, facts: dict[str, dict[str, Any]]) -> tuple[str, str]:
    f = facts.get(entry.dut) or {}
    if isinstance(f.get("build"), int):
        ubr = f.get("ubr")
        build = f"{f['build']}.{ubr}" if isinstance(ubr, int) else str(f["build"])
        return build, str(f.get("product_name") or "")
    parts = entry.scenario.split(".")
    return (parts[1].split("-")[-1] if len(parts) > 1 else "?"), ""


def build_matrix(rd: RunDir) -> Matrix:
    """The matrix of the run in `rd` (the latest journal entry of each scenario)."""
    info = rd.read_info()
    latest = Journal(rd.journal).latest()
    facts = rd.read_facts()
    ids = allure_ids(rd.allure_results)
    virtual = lab_is_virtual(rd)
    matrix = Matrix(run_id=info.run_id, plan=info.plan_name, lab=info.lab, virtual=virtual)
    tables: dict[tuple[str, str], Table] = {}
    column_order: dict[tuple[str, str], dict[str, tuple[Any, ...]]] = {}
    for scenario in [s for s in info.scenarios if s in latest] + [
        s for s in latest if s not in info.scenarios
    ]:
        entry = latest[scenario]
        matrix.counts[entry.outcome.value] = matrix.counts.get(entry.outcome.value, 0) + 1
        build, os_name = _build_of(entry, facts)
        key = (entry.dut, build)
        table = tables.setdefault(key, Table(dut=entry.dut, build=build, os=os_name))
        cell = cell_of(entry, ids.get(scenario))
        conditions = entry.extra.get("conditions") or {}
        column_order.setdefault(key, {})[cell.column] = tuple(
            str(conditions.get(k, "")) for k in COLUMN_KEYS
        )
        package = str(conditions.get("driver_package") or "?")
        row = next((r for r in table.rows if r.package == package), None)
        if row is None:
            row = Row(package=package, directives=_directives(conditions))
            table.rows.append(row)
        row.cells.append(cell)
    for key, table in tables.items():
        table.columns = sorted(column_order[key], key=lambda c: column_order[key][c])
    matrix.tables = list(tables.values())
    return matrix


def lab_is_virtual(rd: RunDir) -> bool:
    """Whether the run's lab was a virtual lab (its lab file has a `virtual:` section); a lab
    file that can no longer be read is not known to be virtual."""
    from harness.config.lab import load_lab
    from harness.errors import HarnessError

    try:
        return load_lab(rd.read_info().resolve("lab"), check_files=False).virtual is not None
    except (HarnessError, OSError):
        return False


def write_matrix_json(rd: RunDir, matrix: Matrix) -> Path:
    return rd.write_private("matrix.json", json.dumps(matrix.to_json(), indent=1) + "\n")
