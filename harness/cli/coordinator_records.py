"""What the lab's coordinator recorded, for the report pages: the previous run of a plan (for
`changes.json`) and every run's journal (for `harness atlas --lab`). With a coordinator, "what
changed since the last run" and the atlas span every controller of the lab, not only the runs in
this controller's reports folder.

>>> previous = previous_from_coordinator(lab, rd, warn=print)         # doctest: +SKIP
>>> write_run_pages(rd, previous)                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from harness.config.lab import Lab
from harness.errors import ConfigError, HarnessError, InfrastructureError
from harness.report.changes import PreviousRun
from harness.report.journal import JournalEntry
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


def runs_from_coordinator(lab: Lab) -> list[tuple[str, list[JournalEntry]]]:
    """Every run the lab's coordinator recorded, with its journal entries (ConfigError when the
    lab has none, InfrastructureError when it cannot be read)."""
    if lab.coordinator is None:
        raise ConfigError(f"{lab.path}: the lab has no 'coordinator:' section", path=str(lab.path))
    from harness.coordinator.connection import connect
    from harness.coordinator.history import all_run_entries
    from harness.coordinator.run_leases import endpoint_of

    try:
        with connect(endpoint_of(lab)) as conn:
            rows = all_run_entries(conn)
    except HarnessError:
        raise
    except Exception as exc:  # psycopg's errors
        raise InfrastructureError(
            f"the coordinator of {lab.path} could not be read: {type(exc).__name__}"
        ) from exc
    return [(run_id, [JournalEntry.from_json(e) for e in entries]) for run_id, entries in rows]
