"""Two controllers, one coordinator, on the virtual lab: separate `python -m harness run`
processes with separate reports folders, each with its own virtual lab, sharing DUT tb-01
through a real PostgreSQL server. (a) one runs while the other waits, then the other runs,
never both at once; (b) kill -9 of the holding controller frees the DUT for the waiter at once
(well within the keepalive bound). The status and history commands read what both wrote, and
the coordinator's password is in no file, output, log or table."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from harness.config.lab import load_lab
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, LeaseHolder
from tests.coordinator.pg import Coordinated

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180
SCENARIO = "*.inf0.*.unlocked"
GUARD1 = "tb-01.*.inf0.external.dv-off.kdp-on.guard1.unlocked"
GUARDX = "tb-01.*.inf0.external.dv-off.kdp-on.guardx.unlocked"
#: appended to the lab's `virtual:` section (the last one of virtual.yaml): 4 x 2 s reboots
SLOW_REBOOTS = "  faults:\n    - {kind: slow-reboot, dut: tb-01, factor: 4}\n"


class Controller:
    """A `harness run` process whose output lines are collected as they come."""

    def __init__(
        self,
        c: Coordinated,
        reports: Path,
        *extra: str,
        plan: str = "testplans/smoke.yaml",
        scenario: str = SCENARIO,
    ) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                plan,
                "--lab",
                str(c.lab),
                "--dut",
                "tb-01",
                "--scenario",
                scenario,
                "--reports",
                str(reports),
                "--no-report",  # what is checked here is no report's business
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=c.env(),
        )
        self.lines: list[tuple[float, str]] = []
        self.reports = reports
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 60) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, line in list(self.lines):
                if text in line:
                    return t
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the output:\n{self.output()}")

    def finish(self) -> int:
        rc = self.proc.wait(timeout=TIMEOUT_S)
        self._reader.join(timeout=10)
        return rc

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def step(self) -> str | None:
        """The step this controller's run is at on tb-01 (its progress file), if any."""
        for f in self.reports.glob("*/progress/tb-01.json"):
            try:
                return str(json.loads(f.read_text())["step"])
            except (OSError, ValueError, KeyError):
                return None
        return None

    def journal_file(self) -> Path:
        (run,) = [
            p.parent for p in self.reports.glob("*/journal.jsonl") if not p.parent.is_symlink()
        ]
        return run / "journal.jsonl"

    def journal(self) -> list[dict[str, object]]:
        return [json.loads(x) for x in self.journal_file().read_text().splitlines()]


def harness(c: Coordinated, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=c.env(),
        timeout=60,
    )


def init(c: Coordinated) -> None:
    done = harness(c, "lab", "coordinator", "init", str(c.lab))
    assert done.returncode == 0, done.stderr
    assert "applied migration 1" in done.stdout


def _span(entry: dict[str, object]) -> tuple[float, float]:
    start = datetime.fromisoformat(str(entry["started"]).replace("Z", "+00:00")).timestamp()
    return start, start + float(entry["duration_s"])  # type: ignore[arg-type]


def test_two_controllers_take_turns_on_one_dut(coordinated: Coordinated, tmp_path: Path) -> None:
    init(coordinated)
    a = Controller(coordinated, tmp_path / "reports-a")
    a.wait_for("coordinator: holding tb-01")
    b = Controller(coordinated, tmp_path / "reports-b", "--wait", "2m")
    b.wait_for("waiting for DUT tb-01: held by")
    assert a.finish() == 0, a.output()
    assert b.finish() == 0, b.output()
    (ja,), (jb,) = a.journal(), b.journal()
    assert ja["outcome"] == jb["outcome"] == "passed"
    assert _span(ja)[1] <= _span(jb)[0]  # never both at once
    # without --wait, a held DUT is refused at once, naming its holder (exit 3)
    lab = load_lab(coordinated.lab)
    assert lab.coordinator is not None
    holder = LeaseHolder(Endpoint(lab.coordinator, lab.base_dir), Claim(run_id="desk-run"))
    try:
        holder.acquire("tb-01")
        refused = harness(
            coordinated, "run", "testplans/smoke.yaml", "--lab", str(coordinated.lab),
            "--dut", "tb-01", "--scenario", SCENARIO, "--reports", str(tmp_path / "reports-c"),
        )  # fmt: skip
    finally:
        holder.close()
    assert refused.returncode == 3
    assert "DUT tb-01 is held by pid" in refused.stderr and "run desk-run" in refused.stderr
    assert "--wait" in refused.stderr

    status = harness(coordinated, "lab", "status", str(coordinated.lab), "--json")
    assert status.returncode == 0, status.stderr
    by_dut = {s["dut"]: s for s in json.loads(status.stdout)}
    assert by_dut["tb-01"]["holder"] is None and by_dut["tb-01"]["queue"] == []
    assert by_dut["tb-01"]["last_run"]["outcomes"] == {"passed": 1}
    assert by_dut["tb-01"]["last_run"]["exit_code"] == 0
    assert by_dut["m2-01"]["last_run"] is None
    text = harness(coordinated, "lab", "status", str(coordinated.lab))
    assert "tb-01: free" in text.stdout and "last run:" in text.stdout

    hist = harness(coordinated, "history", str(ja["scenario"]), "--lab", str(coordinated.lab))
    assert hist.returncode == 0, hist.stderr
    assert hist.stdout.count("passed") == 2  # the runs of a and b, newest first
    runs = [line.split(" run ")[1].split()[0] for line in hist.stdout.splitlines()]
    assert runs == [f.parent.name for f in (b.journal_file(), a.journal_file())]
    as_json = harness(
        coordinated, "history", str(ja["scenario"]), "--lab", str(coordinated.lab), "--json"
    )
    rows = json.loads(as_json.stdout)
    assert [(r["run_id"], r["outcome"], r["dut"]) for r in rows] == [
        (f.parent.name, "passed", "tb-01") for f in (b.journal_file(), a.journal_file())
    ]
    assert rows[0]["plan"] == "smoke" and rows[0]["purpose"] == "manual"
    with coordinated.connect() as conn:  # each run's DUT facts, as written in facts/
        facts = conn.execute("SELECT run_id, facts->>'build' FROM dut_facts WHERE dut = 'tb-01'")
        assert sorted(facts.fetchall()) == sorted(
            (f.parent.name, "22631") for f in (a.journal_file(), b.journal_file())
        )
    outputs = [a.output(), b.output(), refused.stdout + refused.stderr]
    assert_password_nowhere(coordinated, tmp_path, outputs)


def test_kill_9_of_the_holding_controller_frees_the_dut(
    coordinated: Coordinated, tmp_path: Path
) -> None:
    # A's scenario needs DMAGuard policy 1 (a reboot into it, and one back in teardown), and
    # reboots are slow, so A's pytest child is still tearing tb-01 down well after B, whose
    # scenario needs no reboot, has started: B must wait for it (the drive lock)
    text = coordinated.lab.read_text()
    coordinated.lab.write_text(text.replace("coordinator:\n", SLOW_REBOOTS + "coordinator:\n", 1))
    init(coordinated)
    nightly = "testplans/nightly.yaml"
    a = Controller(coordinated, tmp_path / "reports-a", plan=nightly, scenario=GUARD1)
    a.wait_for("coordinator: holding tb-01")
    b = Controller(
        coordinated, tmp_path / "reports-b", "--wait", "2m", plan=nightly, scenario=GUARDX
    )
    b.wait_for("waiting for DUT tb-01: held by")
    end = time.monotonic() + 60
    while a.step() not in ("unplug", "plug"):  # A's tb-01 is in DMAGuard policy 1 by now
        assert time.monotonic() < end and a.proc.poll() is None, a.output()
        time.sleep(0.02)
    a.proc.kill()  # SIGKILL: no release, no goodbye; the server sees the connection end
    killed = time.monotonic()
    taken = b.wait_for("coordinator: holding tb-01", timeout=30)
    bound = 2 + 1 * 2  # keepalives_idle_s + interval x count of the test lab
    assert taken - killed < bound, f"took over after {taken - killed:.1f} s"
    print(f"controller took over {taken - killed:.2f} s after kill -9 of the holder")
    a.finish()
    assert b.finish() == 0, b.output()
    # A's pytest child outlived its controller to restore tb-01 (teardown/tb-01.json is its
    # last word); B drove tb-01 only after that: the drive lock (harness.coordinator.drive)
    (teardown,) = [
        p
        for p in (tmp_path / "reports-a").glob("*/teardown/tb-01.json")
        if not p.parent.parent.is_symlink()
    ]
    (jb,) = b.journal()
    assert json.loads(teardown.read_text())["rebooted"] is True  # back to the baseline
    assert teardown.stat().st_mtime <= _span(jb)[0]


def assert_password_nowhere(c: Coordinated, tmp_path: Path, outputs: list[str]) -> None:
    secret = c.password.encode()
    for out in outputs:
        assert c.password not in out
    for root in (tmp_path, c.server.root):
        for f in root.rglob("*"):
            if f.is_file() and not f.is_symlink():
                assert secret not in f.read_bytes(), f
    with c.connect() as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for t in tables:
            for (row,) in conn.execute(f"SELECT t::text FROM {t} t"):
                assert c.password not in row, t


def test_wait_needs_a_coordinator(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "testplans/smoke.yaml", "--wait", "1m",
         "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "has no coordinator" in done.stderr


@pytest.mark.parametrize("bad", ["2x", "", "h"])
def test_a_bad_wait_is_a_usage_error(bad: str) -> None:
    from harness.coordinator.run_leases import parse_duration
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="--wait"):
        parse_duration(bad)
