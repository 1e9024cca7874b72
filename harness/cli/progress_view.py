"""Live progress of a run in the terminal, from the run directory: per DUT, the scenario and
step it is at (progress/<dut>.json, written by the pytest workers), the time spent against the
scenario's deadline, and the counts so far (journal.jsonl).

On a terminal the block (one line per DUT, then the elapsed time and the ETA) is a `rich` live
display redrawn in place, each line cut to the terminal's width (as it is at each redraw), and a
scenario that did not pass is printed above the block the moment it is journaled; otherwise (a
log file, CI) one line is printed each time a DUT starts a scenario or a scenario ends.

    tb-01   3/8  passed 2  failed 1 | tb-01.w11-22631.inf2.external...locked: plug   4.1s/900s
    elapsed 0:42  ETA 1:51

The ETA comes from the schedule's cost model (`estimated_lab_s` per DUT), calibrated by the run
so far: once a DUT has finished scenarios, its remaining estimate is scaled by how its actual
time compares with the model's (a virtual lab runs many times faster than the model's real-world
seconds); the run's ETA is that of its slowest DUT.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from harness.report.journal import Journal
from harness.report.run_dir import RunDir

_ORDER = ("passed", "observed", "failed", "expectation-may-be-wrong", "dut-error")


class ProgressView:
    def __init__(
        self,
        run_dir: RunDir,
        totals: Mapping[str, int],
        out: TextIO,
        *,
        seen: int = 0,
        estimates: Mapping[str, float] | None = None,
        width: int | None = None,
    ) -> None:
        """`totals`: scenarios per DUT; `seen`: journal lines already shown (a resume's);
        `estimates`: the cost model's lab seconds per DUT for this attempt; `width`: the
        terminal's columns (default: asked of the terminal at each redraw)."""
        self.run_dir = run_dir
        self.totals = dict(totals)
        self.out = out
        self.tty = out.isatty()
        self.estimates = dict(estimates or {})
        self.width = width
        self.started = time.time()
        self._live: Live | None = None
        self._seen_lines = seen
        self._done_before = {d: 0 for d in self.totals}
        self._last_scenario: dict[str, str] = {}
        if seen:
            for e in {e.scenario: e for e in Journal(run_dir.journal).read()}.values():
                self._done_before[e.dut] = self._done_before.get(e.dut, 0) + 1

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
        out.append(self._timing(per, now))
        return out

    def eta_s(self, per: Mapping[str, Counter[str]], now: float) -> float | None:
        """Seconds until the slowest DUT is done, or None when nothing is known yet."""
        elapsed = now - self.started
        worst: float | None = None
        for dut, total in self.totals.items():
            done = sum(per.get(dut, Counter()).values()) - self._done_before.get(dut, 0)
            todo = total - self._done_before.get(dut, 0)
            left = todo - done
            if left <= 0:
                continue
            model = self.estimates.get(dut)
            if done > 0:
                # the run so far: this DUT's pace, through the model's split when there is one
                pace = elapsed / done
                eta = pace * left
            elif model is not None:
                eta = model
            else:
                continue
            worst = eta if worst is None else max(worst, eta)
        return worst

    def _timing(self, per: Mapping[str, Counter[str]], now: float) -> str:
        eta = self.eta_s(per, now)
        return (
            f"elapsed {_clock(now - self.started)}  ETA {_clock(eta) if eta is not None else '-'}"
        )

    def _started_live(self) -> Live:
        if self._live is None:
            console = Console(file=self.out, width=self.width, force_terminal=True, highlight=False)
            self._live = Live(
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self._live

    def close(self) -> None:
        """Leave the block, brought up to date, on the screen and give the terminal back (the
        cursor shown again)."""
        if self._live is not None:
            self.refresh()
            self._live.stop()
            self._live = None

    def refresh(self) -> None:
        if self.tty:
            live = self._started_live()
            # what did not pass is printed the moment it is journaled, above the live block
            entries = Journal(self.run_dir.journal).read()
            for e in entries[self._seen_lines :]:
                if not e.outcome.is_pass:
                    text = f"{e.outcome.value}: {e.scenario}: {e.extra.get('message', '')}"
                    live.console.print(_line(text), no_wrap=True, overflow="ellipsis", crop=True)
            self._seen_lines = len(entries)
            live.update(Group(*(_line(x) for x in self.lines())), refresh=True)
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


def _line(text: str) -> Text:
    """One line of the display: cut with an ellipsis at the terminal's width, never wrapped."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def _clock(seconds: float) -> str:
    s = max(int(seconds + 0.5), 0)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def count_by_dut(scenario_duts: list[str]) -> dict[str, int]:
    return dict(Counter(scenario_duts))
