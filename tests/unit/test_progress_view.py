"""The live view of `harness run` on a terminal: fits its width, prints what did not pass as
it happens, and gives an ETA from the cost model calibrated by the run so far."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

from harness.cli.progress_view import ProgressView
from harness.report.run_dir import RunDir

LONG = "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guardx.locked"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _line(rd: RunDir, sid: str, outcome: str, message: str = "") -> None:
    entry = {
        "scenario": sid,
        "dut": sid.split(".")[0],
        "outcome": outcome,
        "started": "2026-12-05T00:00:00Z",
        "duration_s": 1.0,
        "evidence_level": "documented",
        "message": message,
    }
    with rd.journal.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def _screen(text: str) -> list[str]:
    """The visible lines a terminal would show: ANSI control sequences and carriage returns
    removed."""
    plain = re.sub(r"\x1b\[\??[0-9;]*[A-Za-z]", "", text).replace("\r", "")
    return [x for x in plain.split("\n") if x]


def test_a_narrow_terminal_gets_lines_that_fit_and_failures_as_they_happen(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.create()
    (rd.progress / "tb-01.json").write_text(
        json.dumps({"scenario": LONG, "step": "plug", "scenario_started": 0, "deadline_s": 900})
    )
    out = Terminal()
    view = ProgressView(rd, {"tb-01": 3, "m2-01": 2}, out, estimates={"tb-01": 600}, width=60)
    view.refresh()
    assert all(len(x) <= 60 for x in _screen(out.getvalue()))
    assert "…" in out.getvalue()  # the long scenario id was cut, not wrapped
    assert "ETA 10:00" in out.getvalue()  # nothing finished yet: the cost model's estimate
    _line(rd, LONG, "failed", "product defect: DEVPKEY 1, expected 2")
    out.truncate(0)
    out.seek(0)
    view.refresh()
    screen = _screen(out.getvalue())
    assert screen[0].startswith("failed: " + LONG[:20])  # above the block, at once
    view.refresh()  # printed once only
    assert sum("failed: tb-01" in x for x in _screen(out.getvalue())) == 1


def test_the_eta_follows_the_run_so_far(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.create()
    view = ProgressView(rd, {"tb-01": 4, "m2-01": 2}, Terminal(), estimates={"tb-01": 4000})
    view.started = 1000.0
    # tb-01 finished 1 of 4 in 10 s (the model said 1000 s each: a fast virtual lab)
    assert view.eta_s({"tb-01": Counter(passed=1)}, now=1010.0) == 30.0
    # m2-01 has no estimate and nothing finished: not counted; then both known
    assert view.eta_s({"tb-01": Counter(passed=3), "m2-01": Counter(passed=1)}, now=1030.0) == 30.0
    assert view.eta_s({"tb-01": Counter(passed=4), "m2-01": Counter(passed=2)}, now=1040.0) is None


def test_closing_the_view_leaves_the_last_block_and_shows_the_cursor(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.create()
    out = Terminal()
    view = ProgressView(rd, {"tb-01": 1}, out, width=80)
    view.refresh()
    assert "\x1b[?25l" in out.getvalue()  # the cursor is hidden while the block is live
    _line(rd, "tb-01.a", "passed")
    view.close()
    view.close()  # twice is harmless (an interrupt closes it, then the run's exit)
    text = out.getvalue()
    assert text.endswith("\x1b[?25h") or "\x1b[?25h" in text.splitlines()[-1]
    assert "tb-01    1/1  passed 1" in _screen(text)[-2]
