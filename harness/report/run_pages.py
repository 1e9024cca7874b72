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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.changes import compare_with_previous, write_changes
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


def write_run_pages(rd: RunDir) -> RunPages:
    """Build and write matrix.json, changes.json and matrix.html of the run in `rd`."""
    matrix = build_matrix(rd)
    changes = compare_with_previous(rd)
    matrix_json = write_matrix_json(rd, matrix)
    changes_json = write_changes(rd, changes)
    page = render_matrix_html(matrix, changes=changes)
    matrix_html = rd.write_private("matrix.html", page)
    return RunPages(matrix, matrix_html, matrix_json, changes, changes_json)


def add_matrix_links(results: Path) -> int:
    """Give each Allure test result a link to its matrix cell; returns how many were linked.

    Idempotent (a result that already has the link keeps one)."""
    linked = 0
    for path in results.glob("*-result.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = data.get("name")
        if not isinstance(name, str):
            continue
        links = [
            link
            for link in data.get("links") or []
            if not (isinstance(link, dict) and link.get("name") == MATRIX_LINK_NAME)
        ]
        links.append({"name": MATRIX_LINK_NAME, "url": f"matrix.html#{name}", "type": "link"})
        data["links"] = links
        path.write_text(json.dumps(data), encoding="utf-8")
        linked += 1
    return linked
