"""Live progress of a run in the terminal, from the run directory: per DUT, the scenario and
step it is at (progress/<dut>.json, written by the pytest workers), the time spent against the
scenario's deadline, and the counts so far (journal.jsonl).

On a terminal the block of lines is redrawn in place; otherwise (a log file, CI) one line is
printed each time a DUT starts a scenario or a scenario ends.

    tb-01   3/8  passed 2  failed 1 | tb-01.w11-22631.inf2.external...locked: plug   4.1s/900s
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

from harness.report.journal import Journal
from harness.report.run_dir import RunDir

_ORDER = ("passed", "observed", "failed", "expectation-may-be-wrong", "dut-error")


class ProgressView:
    def __init__(
        self, run_dir: RunDir, totals: Mapping[str, int], out: TextIO, *, seen: int = 0
    ) -> None:
        """`totals`: scenarios per DUT; `seen`: journal lines already shown (a resume's)."""
        self.run_dir = run_dir
        self.totals = dict(totals)
        self.out = out
        self.tty = out.isatty()
        self._drawn = 0
        self._seen_lines = seen
        self._last_scenario: dict[str, str] = {}

    def _progress(self) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        directory = self.run_dir.progress
        if directory.is_dir():
            for f in directory.glob("*.json"):
                try:
                    found[f.stem] = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # being replaced right now
        return found

    def _counts(self) -> tuple[dict[str, Counter[str]], list[str]]:
        per: dict[str, Counter[str]] = {d: Counter() for d in self.totals}
        finished: list[str] = []
        entries = Journal(self.run_dir.journal).read()
        for e in entries:
            finished.append(f"{e.outcome.value:<24} {e.scenario}  ({e.duration_s:.1f} s)")
        for e in {e.scenario: e for e in entries}.values():  # a resume's line supersedes
            per.setdefault(e.dut, Counter())[e.outcome.value] += 1
        return per, finished

    def lines(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        per, _ = self._counts()
        progress = self._progress()
        out = []
        for dut in sorted(self.totals):
            c = per.get(dut, Counter())
            done = sum(c.values())
            counts = "  ".join(f"{k} {c[k]}" for k in _ORDER if c[k]) or "-"
            line = f"{dut:<8} {done}/{self.totals[dut]}  {counts}"
            p = progress.get(dut)
            if p and done < self.totals[dut]:
                elapsed = now - float(p.get("scenario_started") or now)  # type: ignore[arg-type]
                line += (
                    f" | {p.get('scenario')}: {p.get('step')}  "
                    f"{elapsed:.1f}s/{float(p.get('deadline_s') or 0):.0f}s"  # type: ignore[arg-type]
                )
            out.append(line)
        return out

    def refresh(self) -> None:
        if self.tty:
            lines = self.lines()
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            for line in lines:
                self.out.write("\x1b[2K" + line + "\n")
            self._drawn = len(lines)
        else:
            _, finished = self._counts()
            for line in finished[self._seen_lines :]:
                self.out.write(line + "\n")
            self._seen_lines = len(finished)
            for dut, p in sorted(self._progress().items()):
                scenario = str(p.get("scenario") or "")
                if scenario and self._last_scenario.get(dut) != scenario:
                    self._last_scenario[dut] = scenario
                    self.out.write(f"{'running':<24} {scenario}\n")
        self.out.flush()


def count_by_dut(scenario_duts: list[str]) -> dict[str, int]:
    return dict(Counter(scenario_duts))
