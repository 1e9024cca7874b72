"""With a coordinator, "what changed since the last run" and the atlas span controllers: a run
compares itself with the previous run of its plan on its DUTs that any controller recorded, and
`harness atlas --lab` aggregates every run the coordinator holds, not only the runs in one
controller's reports folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.coordinator.pg import Coordinated
from tests.coordinator.test_coordinator_controllers import Controller, harness, init


def test_changes_compare_with_the_previous_run_of_another_controller(
    coordinated: Coordinated, tmp_path: Path
) -> None:
    init(coordinated)
    a = Controller(coordinated, tmp_path / "reports-a")
    assert a.finish() == 0, a.output()
    b = Controller(coordinated, tmp_path / "reports-b")  # another folder: nothing local before
    assert b.finish() == 0, b.output()
    run_a = a.journal_file().parent.name
    changes = json.loads((b.journal_file().parent / "changes.json").read_text())
    assert changes["previous_run"] == run_a, changes
    assert changes["previous_source"].startswith("coordinator, controller "), changes
    assert changes["new_failures"] == changes["fixed"] == changes["gone_scenarios"] == []
    assert changes["new_scenarios"] == [] and changes["facts_changed"] == []
    assert f"changes since {run_a} (coordinator, controller" in b.output(), b.output()
    first = json.loads((a.journal_file().parent / "changes.json").read_text())
    assert first["previous_run"] is None  # the first run of the plan anywhere

    atlas = harness(coordinated, "atlas", "--lab", str(coordinated.lab), "--out", str(tmp_path / "atlas"), "--json")  # fmt: skip
    assert atlas.returncode == 0, atlas.stderr
    data = json.loads(atlas.stdout)
    assert data["runs"] == [run_a, b.journal_file().parent.name]  # both controllers' runs
    (cell,) = data["cells"]  # one scenario, the same cell twice
    assert data["observations"] == 2 and len(cell["behaviours"]) == 1
    assert (tmp_path / "atlas" / "atlas.html").is_file()
    no_db = harness(coordinated, "atlas", "--lab", "lab_config/virtual.yaml", "--out", str(tmp_path / "x"))  # fmt: skip
    assert no_db.returncode == 2 and "no 'coordinator:' section" in no_db.stderr, no_db.stderr
