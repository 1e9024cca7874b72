"""Merge the JUnit XML of a resumed attempt into the run's `junit.xml`.

pytest rewrites its `--junitxml` file at the end of a session, so a resume writes its own file
and this folds it into the run's: the earlier `<testcase>`s of the scenarios the resume ran
again are dropped (a killed attempt may have left one), the resume's are added, and the
`<testsuite>` counters are recomputed. A run whose first attempt was killed has no junit.xml
yet: the resume's file becomes it. `add_journal_cases` then adds a `<testcase>` for each
scenario the journal has a final line of but the XML lacks (pytest died before writing it),
built from that line and marked with the property `source=journal.jsonl`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from harness.outcomes import Outcome
from harness.private_files import write_private
from harness.report.journal import JournalEntry

_BRACKETED = re.compile(r"\[(?P<id>.+)\]$")


def _scenario(case: ET.Element) -> str:
    name = case.get("name", "")
    m = _BRACKETED.search(name)
    return m.group("id") if m else name


def _suite(root: ET.Element) -> ET.Element:
    found = root if root.tag == "testsuite" else root.find("testsuite")
    return found if found is not None else root


def _recount(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    counts = {"failures": "failure", "errors": "error", "skipped": "skipped"}
    suite.set("tests", str(len(cases)))
    for attr, tag in counts.items():
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))
    total = sum(float(c.get("time", "0") or 0) for c in cases)
    suite.set("time", f"{total:.3f}")


def merge_junit(target: Path, addition: Path, rerun: Iterable[str]) -> None:
    """Fold `addition` into `target` (see the module doc); `addition` is removed."""
    if not addition.is_file():
        return
    if not target.is_file():
        addition.replace(target)
        return
    again = set(rerun)
    try:
        tree = ET.parse(target)
        new_suite = _suite(ET.parse(addition).getroot())
    except ET.ParseError:
        addition.replace(target)  # a torn file of the killed attempt: the resume's wins
        return
    suite = _suite(tree.getroot())
    for case in suite.findall("testcase"):
        if not case.get("name") or _scenario(case) in again:  # nameless: an interrupted test
            suite.remove(case)
    for case in new_suite.findall("testcase"):
        suite.append(case)
    _recount(suite)
    write_private(target, ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True))
    addition.unlink()


def add_journal_cases(target: Path, latest: dict[str, JournalEntry]) -> int:
    """Add the journal's final outcomes missing from `target` (see the module doc); how many."""
    if not target.is_file():
        return 0
    try:
        tree = ET.parse(target)
    except ET.ParseError:
        return 0
    suite = _suite(tree.getroot())
    cases = suite.findall("testcase")
    present = {_scenario(c) for c in cases}
    model = cases[0] if cases else None
    classname = model.get("classname", "journal") if model is not None else "journal"
    prefix = (model.get("name", "").split("[")[0] if model is not None else "") or "scenario"
    added = 0
    for sid, e in latest.items():
        if sid in present or e.outcome is Outcome.NOT_RUN:
            continue
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": classname, "name": f"{prefix}[{sid}]", "time": f"{e.duration_s:.3f}"},
        )
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", {"name": "source", "value": "journal.jsonl"})
        text = str(e.extra.get("message", "") or e.outcome.value)
        if e.outcome.is_test_failure and e.outcome is not Outcome.DUT_ERROR:
            ET.SubElement(case, "failure", {"message": text})
        elif not e.outcome.is_pass:
            ET.SubElement(case, "error", {"message": text})
        added += 1
    if added:
        _recount(suite)
        write_private(target, ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True))
    return added
