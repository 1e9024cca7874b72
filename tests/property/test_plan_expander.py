"""Property: any plan, expanded against the shipped labs, gives unique, well-formed scenarios or
a ConfigError naming the plan (or lab) file and a line; never another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from harness.config.lab import Lab, load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import expand, select
from harness.errors import ConfigError
from tests.property.hostile import PROPERTY, ROOT, mutated_yaml

LABS: dict[str, Lab] = {
    "virtual": load_lab(ROOT / "lab_config" / "virtual.yaml"),
    "example": load_lab(ROOT / "lab_config" / "example_lab.yaml", check_files=False),
}
PLANS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "testplans").glob("*.yaml"))}

_junk = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


def _good(values: list[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


def _bad(values: list[Any]) -> st.SearchStrategy[Any]:
    """Junk, duplicates, empty lists or junk inside a list."""
    return st.one_of(
        _junk,
        st.lists(st.sampled_from(values), max_size=4),
        st.lists(st.one_of(st.sampled_from(values), _junk), min_size=1, max_size=4),
    )


DUT_NAMES = ["tb-01", "m2-01"]
DEVICES = ["nvme-tb", "nvme-m2"]
PACKAGES = ["nvme-inf0", "nvme-inf2", "nvme-inf3", "nvme-stack", "nvme-dev1f1"]
CAPABILITIES = ["hid-unlock", "kdp", "windows11", "external-port", "x"]
CHECKS = ["devpkey", "problem_code", "no_bugcheck", "after_unlock"]
MATRIX = {
    "kdp": ["on", "off"],
    "dmaguard": ["absent", 0, 1, 2],
    "verifier_dma": ["on", "off"],
    "test_signing": ["on", "off"],
    "session": ["no-user", "locked", "unlocked"],
    "port": ["external", "exposed", "internal"],
}
#: What a corrupted field may hold besides junk: names and values that do not exist.
UNKNOWN = ["nope", "maybe", 3, "asleep", "usb", "telepathy", True, "x1-tb4", "m2-nic", "0"]


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """A plan that is valid-looking, then (half the time) one field made hostile."""
    plan: dict[str, Any] = {
        "name": "p",
        "purpose": draw(st.sampled_from(["nightly", "qualification", "manual"])),
        "duts": draw(
            st.one_of(
                st.fixed_dictionaries({"names": _good(DUT_NAMES)}),
                st.fixed_dictionaries({"capabilities": _good(CAPABILITIES)}),
            )
        ),
        "devices": draw(_good(DEVICES)),
        "driver_packages": draw(_good(PACKAGES)),
    }
    matrix = {k: draw(_good(v)) for k, v in MATRIX.items() if draw(st.booleans())}
    if matrix:
        plan["matrix"] = matrix
    if draw(st.booleans()):
        full = {**{k: v[:1] for k, v in MATRIX.items()}, **matrix}
        full.update(
            dut=plan["duts"].get("names", DUT_NAMES), driver_package=plan["driver_packages"]
        )
        entries = []
        for _ in range(draw(st.integers(1, 3))):
            keys = draw(
                st.lists(st.sampled_from(sorted(full)), min_size=1, max_size=3, unique=True)
            )
            entries.append({k: draw(st.sampled_from(full[k])) for k in keys})
        plan["exclude"] = entries
    if draw(st.booleans()):
        plan["checks"] = draw(_good(CHECKS))
    if draw(st.booleans()):
        where = draw(
            st.sampled_from(
                [
                    "name",
                    "purpose",
                    "duts",
                    "devices",
                    "driver_packages",
                    "matrix",
                    "exclude",
                    "timeouts",
                    "checks",
                    "retries",
                    "extra",
                ]
                + [f"matrix.{k}" for k in MATRIX]
            )
        )
        hostile = draw(st.one_of(_junk, _bad(UNKNOWN), _bad(DUT_NAMES + DEVICES + PACKAGES)))
        if where.startswith("matrix."):
            plan.setdefault("matrix", {})[where.split(".")[1]] = hostile
        elif where == "timeouts":
            plan["timeouts"] = draw(
                st.dictionaries(
                    st.sampled_from(["run_s", "scenario_s", "step_s", "reboot_s", "plug_s"]),
                    st.one_of(st.integers(-5, 10**30), st.floats(allow_nan=True), _junk),
                    min_size=1,
                )
            )
        elif where == "extra":
            plan[draw(st.text(min_size=1, max_size=8))] = hostile
        else:
            plan[where] = hostile
    return plan


def _expand(path: Path, lab: Lab, text: str) -> None:
    try:
        plan = load_plan(path)
        scenarios = expand(plan, lab)
    except ConfigError as exc:
        assert exc.path in (str(path), lab.path) or exc.path.endswith(".inf"), str(exc)
        if exc.path == str(path) and text.strip():
            assert exc.line is not None and exc.line >= 1, f"no line: {exc}"
        return
    ids = [s.id for s in scenarios]
    assert len(ids) == len(set(ids)), "scenario ids are unique"
    for s in scenarios:
        assert s.dut in lab.duts or s.pool
    if ids:
        assert [s.id for s in select(scenarios, pattern=ids[0])][:1] == [ids[0]]


@PROPERTY
@given(plans(), st.sampled_from(sorted(LABS)))
@example(
    {
        "name": "p",
        "purpose": "manual",
        "duts": {"names": ["tb-01"]},
        "devices": ["nvme-tb"],
        "driver_packages": ["nvme-inf0"],
        "exclude": [{}],
    },
    "virtual",
)
def test_generated_plans_expand_or_fail_typed(
    tmp_path: Path, plan: dict[str, Any], lab: str
) -> None:
    path = tmp_path / "plan.yaml"
    text = yaml.safe_dump(plan, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    _expand(path, LABS[lab], text)


@PROPERTY
@given(st.sampled_from(sorted(PLANS)).flatmap(lambda k: mutated_yaml(PLANS[k])))
def test_mutated_shipped_plans_expand_or_fail_typed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _expand(path, LABS["virtual"], text)
