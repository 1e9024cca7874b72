"""Allure results rebuilt from `journal.jsonl` for scenarios whose own result was never written.

The pytest plugin journals a scenario (one fsynced line) a few milliseconds before
allure-pytest writes its `<uuid>-result.json`. A run killed in between leaves the scenario
final in the journal, so `harness run --resume` does not run it again, and absent from
`allure-results/`, so report.html would lack it. `rebuild_missing` writes, for each scenario
whose latest journal line is final (not `not-run`) and which has no result, an Allure 2 result
made from that line: the journal's outcome as the status (`Outcome.allure_status`), its message
with the category prefix categories.json matches, its start and duration, and what
`pytest_plugin.execute.label` gives a plan scenario (title, epic, feature, story, host, tag, one
parameter per condition and the build), plus the suites and the `matrix` link of
`run_pages.add_matrix_links`. Steps and attachments are lost with the killed process.

Its identity is the real result's: `fullName` is the one allure-pytest gave this run's scenario
test (read from another result of the run, else `full_name` given by the caller),
`testCaseId` is md5(fullName) and `historyId` md5(fullName, parameter values sorted by name),
as allure-pytest computes them; Allure 3 derives its history id from `testCaseId` and the
parameters, so the parameters are exactly the real ones and the mark of the rebuild is a label,
`source: journal.jsonl`. The uuid is derived from the run id and the scenario, so
`matrix.html`'s link (`#testresult/<md5 of the uuid>`) is stable. Idempotent: a scenario with a
result (rebuilt or not) is left alone.

>>> rfc3339_ms("2026-12-05T22:11:45.184Z")
1796508705184
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.config.scenarios import Scenario
from harness.outcomes import MESSAGE_PREFIX, Outcome
from harness.private_files import write_private
from harness.report.allure_files import OBSERVATION_LABEL
from harness.report.allure_prune import load_result, scenario_of
from harness.report.journal import Journal, JournalEntry
from harness.report.run_dir import RunDir
from harness.report.run_pages import MATRIX_LINK_NAME, boot_state

#: The label that marks a result rebuilt from the journal (and the JUnit property's value).
SOURCE_LABEL = "source"
SOURCE_VALUE = "journal.jsonl"
#: The pytest parameter holding the scenario (allure-pytest writes its repr: the scenario id).
PLANNED = "planned"
_NOTE = (
    "Rebuilt from journal.jsonl: the run was killed after this scenario's journal line and "
    "before its Allure result was written; its steps and attachments are lost."
)


def md5(*parts: str) -> str:
    """allure-python-commons' md5 of several strings (their UTF-8 bytes, concatenated)."""
    digest = hashlib.md5()
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def rfc3339_ms(stamp: str) -> int | None:
    """Milliseconds since the epoch of a journal time (ISO 8601 UTC); None if not one."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp() * 1000)


def _quoted(value: str) -> str:
    """allure-commons' `represent` of a string."""
    return f"'{value}'"


def parameters_of(scenario: Scenario) -> list[dict[str, str]]:
    """The parameters allure-pytest writes for a plan scenario: `planned` (the scenario's repr,
    its id), then `execute.label`'s dynamic ones (strings, others JSON), each repr'd."""
    params = [{"name": PLANNED, "value": scenario.id}]
    params += [{"name": k, "value": _quoted(v)} for k, v in scenario.report_parameters()]
    return params


def history_id(full_name: str, parameters: Iterable[Mapping[str, str]]) -> str:
    """allure-pytest's historyId: md5 of fullName and the parameter values sorted by name."""
    ordered = sorted(parameters, key=lambda p: p["name"])
    return md5(full_name, *(p["value"] for p in ordered))


def shown_message(entry: JournalEntry) -> str:
    """The status message the scenario test ends with (`execute.message`): the category's
    prefix, then the journal's message."""
    text = str(entry.extra.get("message") or "")
    prefix = MESSAGE_PREFIX.get(entry.outcome)
    return f"{prefix} {text}" if prefix else text


def _results(results_dir: Path) -> list[dict[str, Any]]:
    found = (load_result(p) for p in sorted(results_dir.glob("*-result.json")))
    return [d for d in found if d is not None]


def scenario_full_name(results: Iterable[Mapping[str, Any]]) -> str | None:
    """The fullName most results of plan scenarios (with a `planned` parameter) carry."""
    names = Counter(
        str(r["fullName"])
        for r in results
        if isinstance(r.get("fullName"), str)
        and any(isinstance(p, dict) and p.get("name") == PLANNED for p in r.get("parameters") or [])
    )
    return names.most_common(1)[0][0] if names else None


def build_result(
    entry: JournalEntry,
    scenario: Scenario,
    *,
    run_id: str,
    plan_name: str,
    purpose: str,
    full_name: str,
) -> dict[str, Any]:
    """The Allure 2 result of `entry` (see the module doc)."""
    params = parameters_of(scenario)
    shown = shown_message(entry)
    conditions = entry.extra.get("conditions") or scenario.conditions_json()
    labels = [
        {"name": "epic", "value": purpose},
        {"name": "feature", "value": scenario.report_feature},
        {"name": "story", "value": scenario.id},
        {"name": "host", "value": entry.dut},
        {"name": "tag", "value": plan_name},
        {"name": "framework", "value": "pytest"},
        {"name": "parentSuite", "value": entry.dut},
        {"name": "suite", "value": boot_state(conditions)},
        {"name": "subSuite", "value": str(conditions.get("driver_package") or "?")},
        {"name": SOURCE_LABEL, "value": SOURCE_VALUE},
    ]
    description = _NOTE
    if entry.outcome is Outcome.OBSERVED:
        labels.append({"name": OBSERVATION_LABEL, "value": shown})
        description = f"{shown}\n\n{_NOTE}"
    result: dict[str, Any] = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"harness:{run_id}/{scenario.id}/journal")),
        "historyId": history_id(full_name, params),
        "testCaseId": md5(full_name),
        "fullName": full_name,
        "name": scenario.id,
        "status": entry.outcome.allure_status,
        "description": description,
        "steps": [],
        "attachments": [],
        "parameters": params,
        "labels": labels,
        "links": [{"name": MATRIX_LINK_NAME, "url": f"matrix.html#{scenario.id}", "type": "link"}],
    }
    if shown:
        result["statusDetails"] = {"message": shown}
    start = rfc3339_ms(entry.started)
    if start is not None:
        result["start"] = start
        result["stop"] = start + round(max(entry.duration_s, 0.0) * 1000)
    return result


def rebuild_missing(rd: RunDir, scenarios: Mapping[str, Scenario], *, full_name: str) -> list[Path]:
    """Write a result for each final journaled scenario of `scenarios` that has none; returns
    the files written (none on a second call). `full_name` is used when no other result of the
    run says what allure-pytest calls the scenario test."""
    info = rd.read_info()
    results = _results(rd.allure_results)
    present = {scenario_of(r) for r in results}
    name = scenario_full_name(results) or full_name
    written: list[Path] = []
    for sid, entry in Journal(rd.journal).latest().items():
        if entry.outcome is Outcome.NOT_RUN or sid in present or sid not in scenarios:
            continue
        data = build_result(
            entry,
            scenarios[sid],
            run_id=info.run_id,
            plan_name=info.plan_name,
            purpose=info.purpose,
            full_name=name,
        )
        path = rd.allure_results / f"{data['uuid']}-result.json"
        write_private(path, json.dumps(data, ensure_ascii=False))
        written.append(path)
    return written
