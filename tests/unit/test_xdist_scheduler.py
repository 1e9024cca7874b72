"""The DUT scheduler for pytest-xdist, driven the way xdist's DSession drives a scheduler, with
worker stand-ins that record what they were sent (the scheduler's only contact with xdist)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.pytest_plugin.xdist_scheduler import (
    OTHER_GROUP,
    CollectionMismatch,
    DutScheduling,
    group_by_scenario,
)


@dataclass(eq=False)
class Worker:
    name: str
    sent: list[int] = field(default_factory=list)
    shutting_down: bool = False

    @property
    def gateway(self) -> Worker:
        return self

    @property
    def id(self) -> str:
        return self.name

    def send_runtest_some(self, indices: list[int]) -> None:
        assert not self.shutting_down, "work sent to a worker that is shutting down"
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


COLLECTION = [
    "t.py::test_scenario[tb-01.a]",
    "t.py::test_scenario[m2-01.a]",
    "t.py::test_scenario[tb-01.b]",
    "t.py::test_scenario[tb-01.c]",
    "t.py::test_scenario[m2-01.b]",
    "t.py::test_scenario[nv-01.a]",
    "t.py::test_handwritten",
]


def dut_of(nodeid: str) -> str:
    return nodeid.split("[")[1].split(".")[0] if "[" in nodeid else OTHER_GROUP


def start(workers: list[Worker]) -> DutScheduling:
    sched = DutScheduling(dut_of)
    for w in workers:
        sched.add_node(w)
    for w in workers:
        assert not sched.collection_is_completed
        sched.add_node_collection(w, COLLECTION)
    assert sched.collection_is_completed
    sched.schedule()
    return sched


def run_to_end(sched: DutScheduling, workers: list[Worker]) -> dict[str, list[str]]:
    """Complete items the way workers do (in order, the last one after shutdown)."""
    done: dict[str, list[str]] = {w.name: [] for w in workers}
    progress = True
    while progress:
        progress = False
        for w in workers:
            ran = len(done[w.name])
            if ran < len(w.sent) - (0 if w.shutting_down else 1):
                sched.mark_test_complete(w, w.sent[ran])
                done[w.name].append(COLLECTION[w.sent[ran]])
                progress = True
    return done


def test_each_dut_runs_whole_on_one_worker_in_collection_order() -> None:
    workers = [Worker("gw0"), Worker("gw1")]
    sched = start(workers)
    done = run_to_end(sched, workers)
    assert sched.tests_finished and not sched.has_pending
    assert all(w.shutting_down for w in workers)
    assert sorted(i for ids in done.values() for i in ids) == sorted(COLLECTION)  # once each
    for group in ("tb-01", "m2-01", "nv-01", OTHER_GROUP):
        owners = {name for name, ids in done.items() for i in ids if dut_of(i) == group}
        assert len(owners) == 1, (group, done)
    tb = [i for ids in done.values() for i in ids if dut_of(i) == "tb-01"]
    assert tb == [c for c in COLLECTION if dut_of(c) == "tb-01"]


def test_largest_group_first_and_a_new_group_only_at_the_last_item() -> None:
    workers = [Worker("gw0"), Worker("gw1")]
    sched = start(workers)
    assert [dut_of(COLLECTION[i]) for i in workers[0].sent] == ["tb-01"] * 3
    assert [dut_of(COLLECTION[i]) for i in workers[1].sent] == ["m2-01"] * 2
    # gw1 finishes its first m2-01 item: it still has one (its nextitem) -> gets the next group
    sched.mark_test_complete(workers[1], workers[1].sent[0])
    assert [dut_of(COLLECTION[i]) for i in workers[1].sent][2:] == ["nv-01"]
    # gw0 has three tb-01 items; after one it has two: nothing new yet
    sched.mark_test_complete(workers[0], workers[0].sent[0])
    assert len(workers[0].sent) == 3


def test_more_workers_than_duts_shuts_the_idle_ones_down() -> None:
    workers = [Worker(f"gw{i}") for i in range(6)]
    sched = start(workers)
    idle = [w for w in workers if not w.sent]
    assert len(idle) == 2 and all(w.shutting_down for w in idle)
    run_to_end(sched, workers)
    assert sched.tests_finished


def test_a_crashed_workers_rest_stays_together_on_the_next_worker() -> None:
    workers = [Worker("gw0"), Worker("gw1")]
    sched = start(workers)
    crashed = sched.remove_node(workers[0])  # died running its first tb-01 item
    assert crashed == COLLECTION[0]
    replacement = Worker("gw2")
    sched.add_node(replacement)
    sched.add_node_collection(replacement, COLLECTION)
    sched.schedule()
    assert [COLLECTION[i] for i in replacement.sent][:2] == [COLLECTION[2], COLLECTION[3]]


def test_workers_that_collected_differently_are_refused() -> None:
    sched = DutScheduling(dut_of)
    a, b = Worker("gw0"), Worker("gw1")
    sched.add_node(a)
    sched.add_node(b)
    sched.add_node_collection(a, COLLECTION)
    sched.add_node_collection(b, COLLECTION[:-1])
    with pytest.raises(CollectionMismatch, match="different tests"):
        sched.schedule()


def test_group_by_scenario_reads_the_dut_from_the_selection() -> None:
    @dataclass
    class S:
        dut: str

    @dataclass
    class P:
        id: str
        scenario: S

    @dataclass
    class Sel:
        scenarios: tuple[P, ...]

    # a pool scenario's id names the pool; its DUT is the schedule's choice
    chosen = Sel((P("pool-a.x.locked", S("tb-02")), P("tb-01.y", S("tb-01"))))
    group_of = group_by_scenario(chosen)
    assert group_of("tp/test_scenarios.py::test_scenario[pool-a.x.locked]") == "tb-02"
    assert group_of("tp/test_scenarios.py::test_scenario[tb-01.y]") == "tb-01"
    assert group_of("tests/test_mine.py::test_blocked") == OTHER_GROUP
    assert group_of("tests/test_mine.py::test_param[unknown]") == OTHER_GROUP
