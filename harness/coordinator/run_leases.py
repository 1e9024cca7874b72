"""What `harness run` does with a coordinator: hold the run's DUTs lab-wide for the whole run
(at once, or waiting with `--wait`), and write the run's history meanwhile.

The controller process holds the leases on its dedicated connection; its pytest child and the
virtual lab die with it (their lifelines), so the holder and the run end together.

>>> parse_duration("1h30m")
5400.0
>>> parse_duration("90s"), parse_duration("2h"), parse_duration("45")
(90.0, 7200.0, 45.0)
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.config.lab import Lab
from harness.coordinator import together
from harness.coordinator.connection import Endpoint, connect, require_psycopg, who
from harness.coordinator.drive import DEFAULT_WAIT_S, ENV_LAB, ENV_WAIT_S
from harness.coordinator.history import HistoryWriter
from harness.coordinator.leases import POLL_S, Claim, DutBusy, LeaseHolder
from harness.coordinator.schema import require_current
from harness.errors import ConfigError
from harness.remote.deadline import Deadline

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
MAX_WAIT_S = 7 * 24 * 3600.0


def parse_duration(text: str) -> float:
    """'2h', '30m', '90s', '1h30m' or plain seconds; ConfigError otherwise."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ConfigError(
            f"--wait: expected a duration such as 2h, 30m, 90s or 1h30m, got {text!r}"
        )
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    seconds = float(h * 3600 + mi * 60 + s)
    if seconds > MAX_WAIT_S:
        raise ConfigError(f"--wait: at most {MAX_WAIT_S / 86400:.0f} days, got {text!r}")
    return seconds


def endpoint_of(lab: Lab) -> Endpoint:
    if lab.coordinator is None:
        raise ConfigError(f"{lab.path}: the lab has no 'coordinator:' section")
    require_psycopg()
    return Endpoint(lab.coordinator, lab.base_dir)


def run_with_leases(
    lab: Lab,
    duts: list[str],
    plan_name: str,
    purpose: str,
    wait_s: float | None,
    reports: Path,
    execute: Callable[[], int],
    echo: Callable[[str], None],
    drive_wait_s: float = DEFAULT_WAIT_S,
) -> int:
    """Hold `duts` lab-wide (DutBusy if they are not free, or not within `wait_s`), run
    `execute` while holding them, and record the run's history; the run's exit code."""
    endpoint = endpoint_of(lab)
    started = time.time()
    check = connect(endpoint)
    try:
        require_current(check, endpoint.describe())
    finally:
        check.close()
    history = HistoryWriter(endpoint, str(lab.path), reports, started)

    def beat() -> None:
        run_id = history.sync()
        if run_id and holder.me.get("run_id") != run_id:
            holder.set_run_id(run_id)

    def lost(reason: str) -> None:
        echo(f"coordinator: {reason}: stopping the run")
        os.kill(os.getpid(), signal.SIGINT)  # like Ctrl-C: scenarios stop, teardown runs

    holder = LeaseHolder(
        endpoint,
        Claim(plan=plan_name, purpose=purpose),
        on_beat=beat,
        echo=echo,
        on_lost=lost,
    )
    try:
        wait = Deadline.after(wait_s, f"DUTs {', '.join(duts)}") if wait_s is not None else None
        holder.acquire_all(duts, wait)
        echo(f"coordinator: holding {', '.join(sorted(holder.held))} lab-wide")
        with _environment({ENV_LAB: str(Path(lab.path).resolve()), ENV_WAIT_S: str(drive_wait_s)}):
            code = execute()  # its pytest child takes each DUT's drive lock (drive.py)
        holder.stop_heartbeat()  # the last sync below is the only one from now on
        try:
            history.sync(exit_code=code)
        except Exception as exc:  # the run's own files hold it all; the database is a copy
            echo(f"coordinator: history not written: {type(exc).__name__}")
        return code
    finally:
        holder.close()
        history.close()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ (so the run's child processes see them), restored afterwards."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_together(
    lab: Lab,
    effort: str,
    pool: list[str],
    units: list[list[str]],
    claim: Claim,
    wait_s: float | None,
    reports: Path,
    run_unit: Callable[[str, list[str]], int],
    echo: Callable[[str], None],
    drive_wait_s: float = DEFAULT_WAIT_S,
) -> int:
    """`harness run --together EFFORT`: hold one free DUT of `pool` (waiting up to `wait_s`),
    publish the units if first, then run units from the shared queue on it until none is left
    (`together.py`); the worst exit code of the runs made here (0 if the others ran them all)."""
    endpoint = endpoint_of(lab)
    work = connect(endpoint)  # the claims' connection: units die with it, not with a lease
    try:
        require_current(work, endpoint.describe())
        row = work.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row is not None
        me = {**who(), "backend_pid": row[0], "backend_start": row[1]}
        history_lock = threading.Lock()
        current: list[HistoryWriter] = []

        def beat() -> None:
            with history_lock:
                if current:
                    current[0].sync()

        holder = LeaseHolder(endpoint, claim, on_beat=beat, echo=echo)
        try:
            dut = _any_free(holder, pool, wait_s)
            echo(f"coordinator: holding {dut} lab-wide")
            if together.publish(work, effort, units):
                echo(f"together {effort}: {len(units)} units published")

            def one(unit: together.Unit) -> tuple[str, int]:
                writer = HistoryWriter(endpoint, str(lab.path), reports, time.time())
                with history_lock:
                    current[:] = [writer]
                env = {ENV_LAB: str(Path(lab.path).resolve()), ENV_WAIT_S: str(drive_wait_s)}
                with _environment(env):
                    code = run_unit(dut, unit.scenarios)
                with history_lock:
                    current.clear()
                    try:
                        run_id = writer.sync(exit_code=code) or ""
                    except Exception as exc:  # the run directory holds it all
                        echo(f"coordinator: history not written: {type(exc).__name__}")
                        run_id = ""
                    writer.close()
                return run_id, code

            codes = together.work_through(work, effort, me, dut, one, echo)
            echo(
                f"together {effort}: {len(codes)} units run here; {together.progress(work, effort)}"
            )
            return max(codes, default=0)
        finally:
            holder.close()
    finally:
        work.close()


def _any_free(holder: LeaseHolder, pool: list[str], wait_s: float | None) -> str:
    """The first DUT of `pool` free now; with `wait_s`, the first to come free by then."""
    deadline = Deadline.after(wait_s or 0.0, f"a DUT of {', '.join(pool)}")
    told = False
    while True:
        refusals = []
        for dut in pool:
            try:
                holder.acquire(dut)
                return dut
            except DutBusy as exc:
                refusals.append(str(exc))
        if wait_s is None or deadline.expired:
            raise DutBusy("no DUT of the pool is free: " + "; ".join(refusals))
        if not told:
            holder.echo(f"waiting for a DUT of {', '.join(pool)}: all held")
            told = True
        threading.Event().wait(min(POLL_S, deadline.remaining()))
