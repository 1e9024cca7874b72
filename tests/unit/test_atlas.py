"""The atlas (harness/report/atlas.py) over run directories written as runs write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report.atlas import build_atlas, cell_key, find_cell, load_atlas
from harness.report.atlas_html import render_atlas_html
from tests.unit.test_run_changes import A, B, _entry, _run


def test_each_cell_counts_what_windows_did_and_where_it_disagreed(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _run(reports, "20261201T020000Z-nightly", [_entry(A, "passed"), _entry(B, "passed")])
    _run(
        reports,
        "20261202T020000Z-nightly",
        [_entry(A, "passed"), _entry(B, "failed", policy=2, started=True)],
    )
    _run(reports, "20261203T020000Z-nightly", [_entry(A, "not-run"), _entry(B, "harness-bug")])
    (reports / "latest").symlink_to("20261202T020000Z-nightly")  # not counted twice
    atlas = build_atlas([reports])
    assert len(atlas.runs) == 3 and len(atlas.cells) == 2
    data = atlas.to_json()
    assert data["observations"] == 4  # not-run and harness-bug observed nothing
    a = next(c for c in atlas.cells if c.key["inf"] == ["0"])
    assert not a.disagrees and [b.count for b in a.behaviours] == [2]
    assert a.behaviours[0].runs == ["20261201T020000Z-nightly", "20261202T020000Z-nightly"]
    b = next(c for c in atlas.cells if c.key["inf"] == ["2"])
    assert b.disagrees
    assert sorted((x.agrees, x.count) for x in b.behaviours) == [(False, 1), (True, 1)]
    wrong = next(x for x in b.behaviours if not x.agrees)
    assert wrong.observed["observed_devpkey"] == 2 and wrong.observed["started_at_plug"] is True
    page = render_atlas_html(atlas)
    assert "1 where Windows disagreed with the oracle" in page and "≠ DEVPKEY 2" in page


def test_an_atlas_file_is_looked_up_by_the_oracles_conditions(tmp_path: Path) -> None:
    rd = _run(tmp_path, "20261201T020000Z-nightly", [_entry(A, "passed")])
    path = tmp_path / "atlas.json"
    import json

    path.write_text(json.dumps(build_atlas([rd.path]).to_json()))
    conditions = _entry(A, "passed")["conditions"]
    key = cell_key(22631, conditions)
    assert find_cell(load_atlas(path), key)["observations"] == 1  # type: ignore[index]
    assert find_cell(load_atlas(path), cell_key(19045, conditions)) is None
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ConfigError, match="not an atlas file"):
        load_atlas(bad)
    with pytest.raises(ConfigError, match="neither a run directory nor a reports folder"):
        build_atlas([tmp_path / "missing"])
