"""The lab's PostgreSQL coordinator (docs/coordinator.md): lab-wide DUT leases held as
session-level advisory locks, the queue of runs waiting for a DUT, `harness lab status` and the
run history. Used only when the lab file has a `coordinator:` section; otherwise leases are
the local files of `harness.lab.lease`.

- `connection`: connection parameters (TLS, keepalives), the password resolved from its
  reference and never put in a string that is logged.
- `schema`: versioned migrations (`harness lab coordinator init`).
- `leases`: one DUT's lease: advisory lock + visible holder row + heartbeat.
- `queue`: waiting for a DUT in priority order, first come first served within a priority.
- `run_leases`: what `harness run` holds for a run, and the history it writes meanwhile.
- `status`, `history`: what the commands read.
"""
