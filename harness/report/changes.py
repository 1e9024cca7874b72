"""What changed since the previous run of the same plan on the same lab: `changes.json`.

A nightly catches a Windows update that changed behaviour here: new failures, fixes, observed
values that changed (the undocumented cells included, whose outcome stays "observed"), and DUT
facts that changed (OS build and UBR, edition, Kernel DMA Protection, driver package versions).
The previous run is the newest other run directory beside this one whose run.json names the same
plan and the same lab file and that journaled at least one scenario; or, when the lab has a
coordinator, the newest such run any controller recorded there (`PreviousRun`, read by the CLI:
the report layer knows no database).

>>> changes = compare_with_previous(RunDir(Path("reports/latest")))   # doctest: +SKIP
>>> [c["text"] for c in changes["new_failures"]]                      # doctest: +SKIP
['tb-01.w11-22631.inf2...: passed -> failed']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.outcomes import Outcome
from harness.report.journal import Journal, JournalEntry
from harness.report.matrix import cell_of
from harness.report.run_dir import RunDir

#: DUT facts compared between runs (facts/<dut>.json keys).
FACT_KEYS = ("build", "ubr", "edition", "product_name", "kdp", "packages")
_OBSERVED_FIELDS = (
    ("observed_devpkey", "DEVPKEY"),
    ("started_at_plug", "started at plug"),
    ("problem_code", "problem code"),
    ("started_after_unlock", "started after unlock"),
    ("probe", "DMA probe"),
)


def _same_lab(a: RunDir, b: RunDir) -> bool:
    try:
        ia, ib = a.read_info(), b.read_info()
    except HarnessError:
        return False
    return ia.plan_name == ib.plan_name and (
        ia.resolve("lab").resolve() == ib.resolve("lab").resolve()
    )


def previous_run(rd: RunDir) -> RunDir | None:
    """The newest earlier run of the same plan on the same lab beside `rd`, if any."""
    try:
        started = rd.read_info().started
    except HarnessError:
        return None
    best: tuple[str, RunDir] | None = None
    for run_json in rd.path.parent.glob("*/run.json"):
        other = RunDir(run_json.parent)
        if other.path.resolve() == rd.path.resolve() or other.path.is_symlink():
            continue
        try:
            info = other.read_info()
        except HarnessError:
            continue
        if info.started >= started or not _same_lab(rd, other):
            continue
        if not other.journal.exists() or not Journal(other.journal).read():
            continue
        if best is None or info.started > best[0]:
            best = (info.started, other)
    return best[1] if best else None


@dataclass(frozen=True)
class PreviousRun:
    """A previous run read from somewhere other than the reports folder (the coordinator)."""

    name: str
    source: str  # e.g. "coordinator, controller lab-pc-2"
    entries: list[dict[str, Any]]  # journal lines in the order written
    facts: dict[str, dict[str, Any]]  # per DUT

    def latest(self) -> dict[str, JournalEntry]:
        out: dict[str, JournalEntry] = {}
        for data in self.entries:
            e = JournalEntry.from_json(data)
            out[e.scenario] = e  # a resume's line supersedes
        return out


def _failing(o: Outcome) -> bool:
    return not o.is_pass and o is not Outcome.NOT_RUN


def _observed(e: JournalEntry) -> dict[str, Any]:
    cell = cell_of(e, None)
    return {name: getattr(cell, name) for name, _ in _OBSERVED_FIELDS}


def _scenario_changes(
    now: dict[str, JournalEntry], before: dict[str, JournalEntry]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {
        "new_failures": [],
        "fixed": [],
        "changed_observations": [],
        "new_scenarios": [],
        "gone_scenarios": [],
    }
    for sid, e in now.items():
        old = before.get(sid)
        if old is None:
            out["new_scenarios"].append({"scenario": sid, "text": f"{sid}: {e.outcome.value}"})
            continue
        transition = {"scenario": sid, "before": old.outcome.value, "after": e.outcome.value}
        text = f"{sid}: {old.outcome.value} -> {e.outcome.value}"
        if _failing(e.outcome) and not _failing(old.outcome):
            out["new_failures"].append({**transition, "text": text})
        elif e.outcome.is_pass and _failing(old.outcome):
            out["fixed"].append({**transition, "text": text})
        if Outcome.NOT_RUN in (e.outcome, old.outcome):
            continue
        a, b = _observed(old), _observed(e)
        diffs = [
            f"{label} {a[name]} -> {b[name]}"
            for name, label in _OBSERVED_FIELDS
            if a[name] != b[name] and a[name] is not None and b[name] is not None
        ]
        if diffs:
            out["changed_observations"].append(
                {
                    "scenario": sid,
                    "before": a,
                    "after": b,
                    "outcome": e.outcome.value,
                    "text": f"{sid}: " + "; ".join(diffs),
                }
            )
    for sid, old in before.items():
        if sid not in now:
            out["gone_scenarios"].append(
                {"scenario": sid, "text": f"{sid} (was {old.outcome.value})"}
            )
    return out


def _facts_changes(
    now: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for dut in sorted(set(now) & set(before)):
        for key in FACT_KEYS:
            a, b = before[dut].get(key), now[dut].get(key)
            if a != b and key in before[dut] and key in now[dut]:
                out.append(
                    {
                        "dut": dut,
                        "fact": key,
                        "before": a,
                        "after": b,
                        "text": f"{dut} {key}: {json.dumps(a)} -> {json.dumps(b)}",
                    }
                )
    return out


def compare_with_previous(rd: RunDir, previous: PreviousRun | None = None) -> dict[str, Any]:
    """The changes of `rd` against its previous run (`previous_run: null` when there is none):
    `previous` when given, else the newest earlier run beside it in the reports folder."""
    result: dict[str, Any] = {"run": rd.path.name, "previous_run": None}
    now = Journal(rd.journal).latest()
    if previous is not None:
        result["previous_run"], result["previous_source"] = previous.name, previous.source
        result.update(_scenario_changes(now, previous.latest()))
        result["facts_changed"] = _facts_changes(rd.read_facts(), previous.facts)
        return result
    prev = previous_run(rd)
    if prev is None:
        return result
    result["previous_run"], result["previous_source"] = prev.path.name, "reports folder"
    result.update(_scenario_changes(now, Journal(prev.journal).latest()))
    result["facts_changed"] = _facts_changes(rd.read_facts(), prev.read_facts())
    return result


def write_changes(rd: RunDir, changes: dict[str, Any]) -> Path:
    return rd.write_private("changes.json", json.dumps(changes, indent=1) + "\n")


def summary_lines(changes: dict[str, Any], limit: int = 10) -> list[str]:
    """Terminal lines: one per change, `limit` per kind at most."""
    if not changes.get("previous_run"):
        return ["changes: no previous run of this plan on this lab"]
    source = changes.get("previous_source")
    where = f" ({source})" if source and source != "reports folder" else ""
    lines = [f"changes since {changes['previous_run']}{where}:"]
    kinds = (
        ("new_failures", "new failure"),
        ("fixed", "fixed"),
        ("changed_observations", "observed value changed"),
        ("facts_changed", "DUT fact changed"),
        ("new_scenarios", "new scenario"),
        ("gone_scenarios", "no longer run"),
    )
    any_change = False
    for key, label in kinds:
        items = changes.get(key) or []
        any_change = any_change or bool(items)
        for item in items[:limit]:
            lines.append(f"  {label}: {item['text']}")
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more ({label})")
    if not any_change:
        lines.append("  nothing")
    return lines
