"""The pages every run writes beside report.html: matrix.json, matrix.html and changes.json.

`write_run_pages(rd)` is called at the end of each attempt (and by `harness report RUN_DIR`),
before report.html is rendered, so each Allure test result can link to its matrix cell
(`add_matrix_links`, a link named "matrix" to `matrix.html#<scenario id>`).

>>> pages = write_run_pages(RunDir(Path("reports/latest")))   # doctest: +SKIP
>>> pages.matrix_html.name, pages.changes["previous_run"]      # doctest: +SKIP
('matrix.html', '20261204T020000Z-nightly')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.private_files import write_private
from harness.report.changes import PreviousRun, compare_with_previous, write_changes
from harness.report.journal import JournalEntry
from harness.report.matrix import Matrix, build_matrix, write_matrix_json
from harness.report.matrix_html import render_matrix_html
from harness.report.run_dir import RunDir

MATRIX_LINK_NAME = "matrix"


@dataclass(frozen=True)
class RunPages:
    matrix: Matrix
    matrix_html: Path
    matrix_json: Path
    changes: dict[str, Any]
    changes_json: Path


def write_run_pages(rd: RunDir, previous: PreviousRun | None = None) -> RunPages:
    """Build and write matrix.json, changes.json and matrix.html of the run in `rd` (changes
    against `previous` when given: a run the coordinator recorded)."""
    matrix = build_matrix(rd)
    changes = compare_with_previous(rd, previous)
    matrix_json = write_matrix_json(rd, matrix)
    changes_json = write_changes(rd, changes)
    page = render_matrix_html(matrix, changes=changes)
    matrix_html = rd.write_private("matrix.html", page)
    return RunPages(matrix, matrix_html, matrix_json, changes, changes_json)


#: Allure's suite labels, replaced by DUT › boot state › driver package for plan scenarios.
SUITE_LABELS = ("parentSuite", "suite", "subSuite")


def boot_state(conditions: Mapping[str, Any]) -> str:
    """`KDP on · DMAGuard absent · DV off · test signing off`: what a reboot sets."""
    c = conditions
    return (
        f"KDP {c.get('kdp', '?')} · DMAGuard {c.get('dmaguard', '?')} · "
        f"DV {c.get('verifier_dma', '?')} · test signing {c.get('test_signing', '?')}"
    )


def add_matrix_links(results: Path, latest: Mapping[str, JournalEntry] | None = None) -> int:
    """Give each Allure test result a link to its matrix cell and, for a scenario of the
    journal (`latest`), the suites DUT › boot state › driver package; returns how many results
    were annotated. Idempotent."""
    linked = 0
    for path in results.glob("*-result.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            continue
        links = [
            link
            for link in data.get("links") or []
            if not (isinstance(link, dict) and link.get("name") == MATRIX_LINK_NAME)
        ]
        links.append({"name": MATRIX_LINK_NAME, "url": f"matrix.html#{name}", "type": "link"})
        data["links"] = links
        entry = (latest or {}).get(name)
        if entry is not None:
            conditions = entry.extra.get("conditions") or {}
            labels = [
                label
                for label in data.get("labels") or []
                if not (isinstance(label, dict) and label.get("name") in SUITE_LABELS)
            ]
            labels += [
                {"name": "parentSuite", "value": entry.dut},
                {"name": "suite", "value": boot_state(conditions)},
                {"name": "subSuite", "value": str(conditions.get("driver_package") or "?")},
            ]
            data["labels"] = labels
        write_private(path, json.dumps(data, ensure_ascii=False))
        linked += 1
    return linked
