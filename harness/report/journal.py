"""`journal.jsonl`: one JSON line per finished scenario, appended, flushed and fsynced as each
scenario ends, so a killed controller loses nothing already recorded.

Each line holds at least `{"scenario", "dut", "outcome", "started", "duration_s",
"evidence_level"}`; the runner adds `message`, `category`, `observations` (unverified
expectations that differed), `attempts`, `conditions`, `expected` and `observed`.

>>> import tempfile, pathlib
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "journal.jsonl")
>>> j.append(JournalEntry("tb-01.x", "tb-01", Outcome.PASSED, "2026-11-21T10:00:00Z", 1.5, "documented"))
>>> [e.outcome for e in j.read()]
[<Outcome.PASSED: 'passed'>]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.outcomes import Outcome
from harness.private_files import append_private


@dataclass(frozen=True)
class JournalEntry:
    scenario: str
    dut: str
    outcome: Outcome
    started: str  # ISO 8601 UTC
    duration_s: float
    evidence_level: str  # weakest evidence level among the expectations that were checked
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "dut": self.dut,
            "outcome": self.outcome.value,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "evidence_level": self.evidence_level,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        known = ("scenario", "dut", "outcome", "started", "duration_s", "evidence_level")
        return cls(
            scenario=str(data["scenario"]),
            dut=str(data["dut"]),
            outcome=Outcome(data["outcome"]),
            started=str(data["started"]),
            duration_s=float(data["duration_s"]),
            evidence_level=str(data["evidence_level"]),
            extra={k: v for k, v in data.items() if k not in known},
        )


class Journal:
    """Append-only, one line per write, `O_APPEND` so concurrent writers never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: JournalEntry) -> None:
        line = (json.dumps(entry.to_json(), sort_keys=False) + "\n").encode("utf-8")
        append_private(self.path, line)  # one O_APPEND write + fsync, file 0600

    def read(self) -> list[JournalEntry]:
        """Every complete line; a torn last line (the writer was killed mid-write) is ignored."""
        if not self.path.exists():
            return []
        entries: list[JournalEntry] = []
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        for number, line in enumerate(lines, 1):
            if not line.endswith("\n"):
                break  # torn tail
            if not line.strip():
                continue
            try:
                entries.append(JournalEntry.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"not a journal line: {exc}", path=str(self.path), line=number
                ) from None
        return entries

    def latest(self) -> dict[str, JournalEntry]:
        """The last entry of each scenario (a rerun's line supersedes an earlier one)."""
        return {e.scenario: e for e in self.read()}
