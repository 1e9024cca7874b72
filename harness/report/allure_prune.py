"""Remove what an interrupted attempt left in `allure-results/` for the scenarios a resume runs
again, so the report shows each scenario once.

allure-pytest (allure-python-commons' file logger) writes, each under a fresh uuid4:
`<uuid>-attachment.<ext>` as soon as something is attached, `<uuid>-container.json` when a
fixture is finalised (its `children` are result uuids, its `befores`/`afters` may reference
attachments) and `<uuid>-result.json` when the test ends; each is written to `<name>.tmp` first
and renamed. A controller killed mid-scenario therefore leaves attachments without a result, a
`*.tmp`, or (if pytest was stopped like after Ctrl-C) a result whose scenario the journal never
recorded. `prune_results` removes, before the scenarios are run again:

- every result of those scenarios (the result's `planned` parameter, else the `[id]` of its
  test name, else its name) and every `*.tmp`;
- those results' uuids from the containers' `children` (a container left with none is removed);
- every attachment no remaining result or container references.

>>> scenario_of({"name": "test_scenario[tb-01.x]", "parameters": []})
'tb-01.x'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.private_files import write_private

_BRACKETED = re.compile(r"^[^\[]*\[(?P<id>.+)\]$")


@dataclass(frozen=True)
class Pruned:
    results: int = 0
    containers: int = 0
    attachments: int = 0
    partial: int = 0  # *.tmp files

    @property
    def total(self) -> int:
        return self.results + self.containers + self.attachments + self.partial


def scenario_of(result: dict[str, Any]) -> str:
    """The scenario id an allure-pytest result belongs to."""
    for p in result.get("parameters") or []:
        if isinstance(p, dict) and p.get("name") == "planned":
            return str(p.get("value", "")).strip("'\"")
    name = str(result.get("name", ""))
    m = _BRACKETED.match(name)
    return m.group("id") if m else name


def _sources(node: Any) -> Iterator[str]:
    """Every attachment `source` below a result or container (steps nest)."""
    if isinstance(node, dict):
        for a in node.get("attachments") or []:
            if isinstance(a, dict) and a.get("source"):
                yield str(a["source"])
        for key in ("steps", "befores", "afters"):
            for child in node.get(key) or []:
                yield from _sources(child)


def load_result(path: Path) -> dict[str, Any] | None:
    """An Allure JSON file's object; None if it is unreadable, not JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prune_results(results_dir: Path, rerun: Iterable[str]) -> Pruned:
    """Remove the results of the scenarios in `rerun` and the orphans; see the module doc."""
    if not results_dir.is_dir():
        return Pruned()
    again = set(rerun)
    partial = 0
    for tmp in results_dir.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
        partial += 1
    removed_uuids: set[str] = set()
    referenced: set[str] = set()
    results = 0
    for path in sorted(results_dir.glob("*-result.json")):
        data = load_result(path)
        if data is None:
            continue  # not ours to judge
        if scenario_of(data) in again:
            removed_uuids.add(str(data.get("uuid") or path.name[: -len("-result.json")]))
            path.unlink()
            results += 1
        else:
            referenced.update(_sources(data))
    containers = 0
    for path in sorted(results_dir.glob("*-container.json")):
        data = load_result(path)
        if data is None:
            continue
        children = [c for c in data.get("children") or [] if c not in removed_uuids]
        if len(children) != len(data.get("children") or []):
            if not children:
                path.unlink()
                containers += 1
                continue
            data["children"] = children
            write_private(path, json.dumps(data, ensure_ascii=False))
        referenced.update(_sources(data))
    attachments = 0
    for path in sorted(results_dir.glob("*-attachment*")):
        if path.name not in referenced:
            path.unlink()
            attachments += 1
    return Pruned(results, containers, attachments, partial)
