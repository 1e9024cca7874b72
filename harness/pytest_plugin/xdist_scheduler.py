"""A pytest-xdist scheduler that hands each worker whole DUTs.

A DUT is driven by one process at a time (its lease says so), so a plan's scenarios must reach
the workers DUT by DUT: every scenario of one DUT on the same worker, in the plan's run order.
xdist's `loadgroup` distribution does this from `xdist_group` marks, which some pytest and
pytest-xdist releases silently ignore (pytest-xdist issue #1386); this scheduler does not read
marks at all. It implements xdist's documented `Scheduling` protocol (returned from the public
`pytest_xdist_make_scheduler` hook) and takes the grouping from a function of the test id that
the plugin computes from its own selection.

- Each test id maps to a group key (`group_of`): a plan scenario to its DUT; anything else (a
  hand-written test) to one shared group, so those run on one worker.
- Groups are handed out largest first (the longest DUT starts first); a worker gets a new group
  when its current one is down to the item it keeps for `nextitem`, and is shut down when no
  group is left.
- A crashed worker's unfinished items go back to the front of the queue as a group, so its DUT
  stays on one worker.

>>> sched = DutScheduling(lambda nodeid: nodeid.split("[")[1][:5])   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["OTHER_GROUP", "DutScheduling", "group_by_scenario"]

#: The group of the tests that are not plan scenarios (hand-written tests).
OTHER_GROUP = "(hand-written tests)"


class CollectionMismatch(RuntimeError):
    """Two workers collected different tests: the selection is not deterministic."""


class DutScheduling:
    """xdist `Scheduling`: whole groups (DUTs) per worker, in collection order inside a group."""

    def __init__(self, group_of: Callable[[str], str], log: Any = None) -> None:
        self._group_of = group_of
        self._log = log
        self._collections: dict[Any, list[str]] = {}
        #: per worker: indices sent and not yet reported complete, in order
        self._pending: dict[Any, list[int]] = {}
        self._queue: list[list[int]] = []  # groups not yet handed out
        self._collection: list[str] | None = None
        #: the group each worker currently runs, for the log and for tests
        self.assigned: dict[Any, list[str]] = {}

    # -- the Scheduling protocol ---------------------------------------------------------------
    @property
    def nodes(self) -> list[Any]:
        return list(self._pending)

    @property
    def collection_is_completed(self) -> bool:
        return bool(self._pending) and len(self._collections) == len(self._pending)

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self._collection is None or self._queue:
            return False
        return all(len(p) <= 1 for p in self._pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self._queue) or any(self._pending.values())

    def add_node(self, node: Any) -> None:
        self._pending.setdefault(node, [])
        self.assigned.setdefault(node, [])

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        self._collections[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        pending = self._pending[node]
        if item_index in pending:
            pending.remove(item_index)
        self._refill(node)

    def mark_test_pending(self, item: str) -> None:
        if self._collection is None:
            return
        self._queue.insert(0, [self._collection.index(item)])

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        gone = set(indices)
        pending = self._pending[node]
        back = [i for i in pending if i in gone]
        self._pending[node] = [i for i in pending if i not in gone]
        if back:
            self._queue.insert(0, back)

    def remove_node(self, node: Any) -> str | None:
        pending = self._pending.pop(node, [])
        self._collections.pop(node, None)
        self.assigned.pop(node, None)
        if not pending or self._collection is None:
            return None
        crashed, rest = pending[0], pending[1:]
        if rest:
            self._queue.insert(0, rest)  # same DUT, next free worker
        return self._collection[crashed]

    def schedule(self) -> None:
        if self._collection is None:
            self._collection = self._agreed_collection()
            self._queue = self._groups(self._collection)
            self._say(f"{len(self._queue)} DUT groups for {len(self._pending)} workers")
        for node in list(self._pending):
            self._refill(node)

    # -- inside --------------------------------------------------------------------------------
    def _agreed_collection(self) -> list[str]:
        collections = list(self._collections.values())
        first = collections[0]
        for other in collections[1:]:
            if other != first:
                missing = sorted(set(first) ^ set(other))[:5]
                raise CollectionMismatch(
                    "workers collected different tests (the selection must be the same in "
                    f"every worker); first differences: {missing}"
                )
        return first

    def _groups(self, collection: list[str]) -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for index, nodeid in enumerate(collection):
            groups.setdefault(self._group_of(nodeid), []).append(index)
        # largest first; ties keep the order of first appearance (dict order, stable sort)
        return sorted(groups.values(), key=len, reverse=True)

    def _refill(self, node: Any) -> None:
        """Give `node` the next group once it is down to its `nextitem`; else shut it down."""
        if self._collection is None or node.shutting_down:
            return
        pending = self._pending[node]
        if len(pending) > 1:
            return
        if not self._queue:
            node.shutdown()
            return
        group = self._queue.pop(0)
        pending.extend(group)
        names = {self._group_of(self._collection[i]) for i in group}
        self.assigned[node] = sorted(names)
        self._say(f"{getattr(node.gateway, 'id', node)}: {', '.join(sorted(names))}")
        node.send_runtest_some(group)

    def _say(self, text: str) -> None:
        if self._log is not None:
            self._log(text)


def group_by_scenario(chosen: Any) -> Callable[[str], str]:
    """The group of a test id: the DUT of the plan scenario in its `[...]` parameter (from the
    plugin's `Selection`), else OTHER_GROUP."""
    dut_of = {p.id: p.scenario.dut for p in chosen.scenarios}

    def group_of(nodeid: str) -> str:
        _, _, name = nodeid.rpartition("::")
        start = name.find("[")
        if start < 0 or not name.endswith("]"):
            return OTHER_GROUP
        return dut_of.get(name[start + 1 : -1], OTHER_GROUP)

    return group_of
