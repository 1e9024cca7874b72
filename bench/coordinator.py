"""The coordinator's lease figures on a throwaway local PostgreSQL (TCP on 127.0.0.1, SCRAM
password, the harness's own connection settings):

- acquire and release latency of one DUT lease on a held connection (pg_try_advisory_lock plus
  the visible row, and its removal), over N rounds;
- connect latency (a run's dedicated lease connection, once per run);
- time to take over after kill -9: a waiter queued with --wait semantics gets the DUT this long
  after its holder process is killed with SIGKILL (the server sees the socket close at once;
  a network partition would instead take up to the keepalive bound).

- with `--controllers`: the wall time of `harness run --together` on the virtual pool (4
  units of one scenario each) by one controller, then by two at once, and the speed-up.

    python3 bench/coordinator.py [--rounds 200] [--kills 5] [--controllers]

Needs initdb/pg_ctl (PATH or /usr/lib/postgresql/*/bin) and psycopg (the 'coordinator' extra).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
import yaml

from harness.config.lab_models import Coordinator
from harness.coordinator.connection import Endpoint, keepalive_bound_s
from harness.coordinator.leases import Claim, LeaseHolder
from harness.coordinator.schema import migrate
from harness.coordinator.scratch_server import ScratchServer
from harness.remote.deadline import Deadline

ENV = "BENCH_COORDINATOR_PW"

HOLD = """
import sys
from harness.config.lab_models import Coordinator
from harness.coordinator.connection import Endpoint
from harness.coordinator.leases import Claim, LeaseHolder
cfg = Coordinator.model_validate_json(sys.argv[1])
h = LeaseHolder(Endpoint(cfg, __import__("pathlib").Path(".")), Claim(run_id="victim"))
h.acquire("bench-dut")
print("held", flush=True)
sys.stdin.readline()
"""


def ms(values: list[float]) -> str:
    """Median and nearest-rank 95th percentile, in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(values) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--controllers", action="store_true", help="also time one vs two controllers")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # not the takeover warnings, once per kill
    server = ScratchServer.start()
    password = secrets.token_hex(16)
    os.environ[ENV] = password
    try:
        with psycopg.connect(server.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE bench LOGIN PASSWORD '{password}'")
            conn.execute("CREATE DATABASE bench OWNER bench")
        cfg = Coordinator.model_validate(
            {
                "url": f"postgresql://127.0.0.1:{server.port}/bench",
                "user": "bench",
                "password": f"env:{ENV}",
                "sslmode": "disable",
            }
        )
        ep = Endpoint(cfg, Path(tempfile.gettempdir()))
        with psycopg.connect(**ep.params(), autocommit=True) as conn:
            migrate(conn)
        connects: list[float] = []
        for _ in range(min(20, args.rounds)):
            t = time.perf_counter()
            LeaseHolder(ep, Claim(run_id="bench")).close()
            connects.append(time.perf_counter() - t)
        holder = LeaseHolder(ep, Claim(run_id="bench"))
        acquire: list[float] = []
        release: list[float] = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            lease = holder.acquire("bench-dut")
            t2 = time.perf_counter()
            lease.release()
            acquire.append(t2 - t)
            release.append(time.perf_counter() - t2)
        holder.close()
        takeovers = [take_over_after_kill(ep, cfg) for _ in range(args.kills)]
        print(f"PostgreSQL on 127.0.0.1 (TCP, SCRAM), {args.rounds} rounds")
        print(f"connect (a run's lease connection): {ms(connects)}")
        print(f"lease acquire: {ms(acquire)}")
        print(f"lease release: {ms(release)}")
        print(
            f"take over after kill -9 of the holder ({args.kills} kills): {ms(takeovers)}, "
            f"max {max(takeovers) * 1000:.0f} ms (keepalive bound for a partition: "
            f"{keepalive_bound_s(cfg)} s)"
        )
        if args.controllers:
            one = time_controllers(cfg, 1, "solo")
            two = time_controllers(cfg, 2, "duo")
            print(
                f"harness run --together, virtual pool, 4 units: one controller {one:.1f} s, "
                f"two controllers {two:.1f} s (speed-up {one / two:.2f})"
            )
    finally:
        server.stop()


ROOT = Path(__file__).resolve().parents[1]
PATTERN = "tb-pool.*.inf0.external.dv-off.kdp-on.*.unlocked"


def time_controllers(cfg: Coordinator, n: int, effort: str) -> float:
    """Wall time of `n` controllers running the pattern's units of the nightly together."""
    work = Path(tempfile.mkdtemp(prefix="bench-together-"))
    (work / "packages").symlink_to(ROOT / "lab_config" / "packages")
    lab = work / "lab.yaml"
    section = {"coordinator": cfg.model_dump(mode="json", exclude_defaults=True)}
    shipped = (ROOT / "lab_config" / "virtual_pool.yaml").read_text(encoding="utf-8")
    lab.write_text(shipped + "\n" + yaml.safe_dump(section), encoding="utf-8")
    harness = [sys.executable, "-m", "harness"]
    subprocess.run([*harness, "lab", "coordinator", "init", str(lab)], check=True, cwd=ROOT)
    t = time.perf_counter()
    procs = []
    for i in range(n):
        cmd = [*harness, "run", "testplans/nightly.yaml", "--lab", str(lab)]
        cmd += ["--scenario", PATTERN, "--reports", str(work / f"reports-{i}")]
        cmd += ["--together", effort]
        out = subprocess.DEVNULL
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out))
    codes = [p.wait(timeout=900) for p in procs]
    wall = time.perf_counter() - t
    if any(codes):
        raise SystemExit(f"a controller failed: exit codes {codes} (reports in {work})")
    return wall


def take_over_after_kill(ep: Endpoint, cfg: Coordinator) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), cfg.model_dump_json()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "held"
        waiter = LeaseHolder(ep, Claim(run_id="waiter"))
        proc.kill()
        t = time.perf_counter()
        waiter.acquire("bench-dut", Deadline.after(60, "bench-dut"))
        taken = time.perf_counter() - t
        waiter.close()
        return taken
    finally:
        proc.kill()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
