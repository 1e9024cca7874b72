"""With a coordinator, "what changed since the last run" spans controllers: a run compares
itself with the previous run of its plan on its DUTs that any controller recorded, not only
with the runs in its own reports folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.coordinator.pg import Coordinated
from tests.coordinator.test_coordinator_controllers import Controller, init


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
