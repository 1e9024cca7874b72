"""Test plans: `load_plan(path) -> Plan`. What to run: DUTs, devices, packages, the matrix.

A plan names DUTs (by name and/or required capabilities), devices and driver packages of a lab,
and a matrix of conditions; `scenarios.expand(plan, lab)` turns it into scenarios. Matrix keys
left out take the defaults below; `exclude` drops the scenarios matching every key of an entry.

>>> m = Matrix()
>>> [v.value for v in m.session], [v.value for v in m.dmaguard]
(['unlocked'], ['absent'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from harness.config.lab_models import DmaGuard
from harness.config.model import (
    MAX_DURATION_S,
    ConfigModel,
    IntAsStr,
    Name,
    validate_document,
)
from harness.config.secrets import check_no_literal_secrets
from harness.config.yaml_loader import KeyPath, LoadedYaml, load_yaml
from harness.domain.conditions import DmaGuardPolicy, OnOff, PortKind, SessionState
from harness.errors import ConfigError

Check = Literal[
    "devpkey",
    "problem_code",
    "starts_at_plug",
    "dma_probe",
    "after_unlock",
    "no_bugcheck",
    "driver_signature",
]
DEFAULT_CHECKS: tuple[Check, ...] = (
    "devpkey",
    "problem_code",
    "starts_at_plug",
    "dma_probe",
    "after_unlock",
    "no_bugcheck",
)
MATRIX_KEYS = ("kdp", "dmaguard", "verifier_dma", "test_signing", "session", "port")
#: Keys an `exclude` entry may use besides the matrix keys.
SCENARIO_KEYS = ("dut", "device", "driver_package")


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate value {getattr(v, 'value', v)!r}")
        seen.append(v)
    return values


T = TypeVar("T")
#: A non-empty list without duplicates.
Values = Annotated[list[T], Field(min_length=1), AfterValidator(_unique)]


class DutSelection(ConfigModel):
    """DUTs by name, by required capabilities (all of them), or both (named and capable)."""

    names: Values[Name] | None = None
    capabilities: Values[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> DutSelection:
        if self.names is None and self.capabilities is None:
            raise ValueError("give 'names', 'capabilities', or both")
        return self


def _default(*values: Any) -> Any:
    return Field(default_factory=lambda: list(values))


class Matrix(ConfigModel):
    kdp: Values[OnOff] = _default(OnOff.ON)
    dmaguard: Values[DmaGuard] = _default(DmaGuardPolicy.ABSENT)
    verifier_dma: Values[OnOff] = _default(OnOff.OFF)
    test_signing: Values[OnOff] = _default(OnOff.OFF)
    session: Values[SessionState] = _default(SessionState.UNLOCKED)
    port: Values[PortKind] = _default(PortKind.EXTERNAL)

    def values(self, key: str) -> list[str]:
        """The spelled values of matrix key `key` ('on', '1', 'locked', ...)."""
        return [v.value for v in getattr(self, key)]


class Timeouts(ConfigModel):
    """Deadlines in seconds; they nest: run > scenario > step > remote call."""

    run_s: float | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description="the whole run: no scenario starts after it, each one ends by it "
        "(default: no limit)",
    )
    scenario_s: float = Field(1800, gt=0, le=MAX_DURATION_S)
    step_s: float = Field(300, gt=0, le=MAX_DURATION_S)
    reboot_s: float = Field(600, gt=0, le=MAX_DURATION_S)
    plug_s: float = Field(60, gt=0, le=MAX_DURATION_S)
    remote_call_s: float = Field(120, gt=0, le=MAX_DURATION_S)

    @model_validator(mode="after")
    def _nested(self) -> Timeouts:
        order = [
            ("remote_call_s", "step_s"),
            ("plug_s", "step_s"),
            ("step_s", "scenario_s"),
            ("reboot_s", "scenario_s"),
        ]
        if self.run_s is not None:
            order.append(("scenario_s", "run_s"))
        for inner, outer in order:
            if getattr(self, inner) > getattr(self, outer):
                raise ValueError(f"{inner} must not exceed {outer}")
        return self

    @property
    def teardown_s(self) -> float:
        """The deadline of one DUT's return to its baseline at the end of a run (and of
        `harness lab restore`): one reboot and four steps."""
        return self.reboot_s + 4 * self.step_s


class Retries(ConfigModel):
    infrastructure: int = Field(
        2, ge=0, le=5, description="retries of a scenario after an infrastructure error"
    )
    quarantine_after: int = Field(
        2,
        ge=1,
        le=20,
        description="scenarios in a row ending in infrastructure errors that quarantine a DUT "
        "(a DUT error quarantines it at once)",
    )


ExcludeValue = Annotated[str | int | bool, IntAsStr]
ExcludeEntry = dict[str, ExcludeValue | Annotated[list[ExcludeValue], Field(min_length=1)]]


class PlanModel(ConfigModel):
    """The plan file's top level."""

    name: str = Field(min_length=1)
    purpose: Literal["nightly", "qualification", "manual"]
    description: str = ""
    duts: DutSelection
    devices: Values[Name]
    driver_packages: Values[Name]
    matrix: Matrix = Field(default_factory=Matrix)
    exclude: list[Annotated[ExcludeEntry, Field(min_length=1)]] = Field(default_factory=list)
    checks: Annotated[list[Check], AfterValidator(_unique)] = _default(*DEFAULT_CHECKS)
    timeouts: Timeouts = Field(default_factory=lambda: Timeouts.model_validate({}))
    retries: Retries = Field(default_factory=lambda: Retries.model_validate({}))


class Plan(PlanModel):
    """A validated plan, remembering its file (for error lines)."""

    _source: LoadedYaml | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        return self._source.path if self._source else "<plan>"

    def error(self, message: str, key_path: KeyPath = ()) -> ConfigError:
        if self._source is None:
            return ConfigError(message, path=self.path)
        return self._source.error(message, key_path)

    def exclusions(self) -> list[dict[str, frozenset[str]]]:
        """Each exclude entry as key -> accepted spellings."""
        out = []
        for entry in self.exclude:
            out.append(
                {
                    k: frozenset(_spell(x) for x in (v if isinstance(v, list) else [v]))
                    for k, v in entry.items()
                }
            )
        return out


def _spell(value: str | int | bool) -> str:
    if isinstance(value, bool):  # `true` where on/off was meant
        return "on" if value else "off"
    return str(value)


def _check_exclusions(plan: Plan) -> None:
    allowed = {
        **{k: set(plan.matrix.values(k)) for k in MATRIX_KEYS},
        "device": set(plan.devices),
        "driver_package": set(plan.driver_packages),
    }
    for i, entry in enumerate(plan.exclusions()):
        for key, values in entry.items():
            where: KeyPath = ("exclude", i, key)
            if key == "dut":
                continue  # DUT names are checked against the lab at expansion
            if key not in allowed:
                known = ", ".join((*MATRIX_KEYS, *SCENARIO_KEYS))
                raise plan.error(f"unknown exclusion key '{key}' (one of: {known})", where)
            for value in sorted(values):
                if value not in allowed[key]:
                    options = ", ".join(sorted(allowed[key]))
                    raise plan.error(
                        f"value '{value}' is not in the plan's {key} list ({options})", where
                    )


def load_plan(path: str | Path) -> Plan:
    """Load and validate a plan file; every problem is a ConfigError naming file, line and key."""
    doc = load_yaml(path)
    check_no_literal_secrets(doc)
    plan = validate_document(Plan, doc)
    plan._source = doc
    _check_exclusions(plan)
    return plan
