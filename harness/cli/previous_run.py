"""The previous run of a plan as the lab's coordinator recorded it, for `changes.json`: with a
coordinator, "what changed since the last run" spans every controller of the lab, not only the
runs in this controller's reports folder.

>>> previous = previous_from_coordinator(lab, rd, warn=print)         # doctest: +SKIP
>>> write_run_pages(rd, previous)                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from harness.config.lab import Lab
from harness.errors import HarnessError
from harness.report.changes import PreviousRun
from harness.report.run_dir import RunDir


def previous_from_coordinator(
    lab: Lab, rd: RunDir, *, warn: Callable[[str], object]
) -> PreviousRun | None:
    """The newest earlier run of `rd`'s plan on the lab's DUTs in the coordinator; None when
    the lab has no coordinator, it holds no such run, or it cannot be read (then `warn` says
    so and the reports folder is used)."""
    if lab.coordinator is None:
        return None
    # imported here: psycopg is loaded only by runs whose lab has a coordinator
    from harness.coordinator.connection import connect
    from harness.coordinator.history import previous_run_records
    from harness.coordinator.run_leases import endpoint_of

    try:
        info = rd.read_info()
        duts = sorted({s.split(".", 1)[0] for s in info.scenarios})
        endpoint = endpoint_of(lab)
        with connect(endpoint) as conn:
            found = previous_run_records(conn, info.plan_name, info.run_id, info.started, duts)
    except (HarnessError, OSError) as exc:
        warn(f"changes: the coordinator could not be read ({exc}); comparing with this folder")
        return None
    except Exception as exc:  # psycopg's errors: the database is optional for this page
        warn(
            f"changes: the coordinator could not be read ({type(exc).__name__}); "
            "comparing with this folder"
        )
        return None
    if found is None:
        return None
    return PreviousRun(
        name=str(found["run_id"]),
        source=f"coordinator, controller {found['host']}",
        entries=list(found["entries"]),
        facts=dict(found["facts"]),
    )
