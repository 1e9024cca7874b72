"""The files the harness adds to `allure-results/` besides allure-pytest's own.

* `categories.json`: one Allure category per outcome of the taxonomy (outcomes.py), matched on
  the first words of the status message (`MESSAGE_PREFIX`).
* `environment.properties`: what the run ran on (per DUT: build, KDP, DMAGuard policy, Verifier;
  driver package versions and signers; harness version; sha256 of the lab file).
* `mark_observations`: allure-pytest never writes a status message for a passed test, so the
  "Observations of undocumented behaviour" category could never match; this copies the
  `observation` label of each passed result into its `statusDetails.message`.

allure-pytest writes the message as `<ExceptionType>: <text>` (`AssertionError: ...`,
`harness.errors.TestFailure: ...`, `Skipped: ...`); the patterns accept that one leading type
name, so they classify the message whether or not the runner strips it. Each is anchored at the
start and ends in `[\\s\\S]*` (no `(?s)` flag needed), so it gives the same answer under
Allure 3 (`RegExp.test`, a search) and Allure 2 (`Pattern.matches`, a whole-string match).

>>> import re
>>> bool(re.match(CATEGORIES[0]["messageRegex"], "AssertionError: product defect: x\\ny"))
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.outcomes import MESSAGE_PREFIX, Outcome
from harness.private_files import write_private
from harness.report.run_dir import RunDir

CATEGORIES_FILE = "categories.json"
ENVIRONMENT_FILE = "environment.properties"
OBSERVATION_LABEL = "observation"

#: An optional leading exception type name (`AssertionError: `, `harness.errors.DutError: `).
_TYPE_PREFIX = r"^(?:[A-Za-z_][\w.]*: )?"


def message_regex(outcome: Outcome) -> str:
    """The pattern of the status messages of `outcome`: its prefix, then anything (newlines too)."""
    return _TYPE_PREFIX + re.escape(MESSAGE_PREFIX[outcome]).replace("\\ ", " ") + r"[\s\S]*"


def _category(name: str, outcome: Outcome, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "matchedStatuses": [outcome.allure_status],
        "messageRegex": message_regex(outcome),
    }


#: The content of categories.json. Order matters: Allure puts a result in the first match.
CATEGORIES: list[dict[str, Any]] = [
    _category(
        "Product defects",
        Outcome.FAILED,
        "A documented expectation failed, or the product crashed under Driver Verifier.",
    ),
    _category(
        "Expectation may be wrong",
        Outcome.EXPECTATION_MAY_BE_WRONG,
        "Only inferred expectations failed: the product or the oracle may be wrong.",
    ),
    _category(
        "DUT errors",
        Outcome.DUT_ERROR,
        "The DUT crashed outside a Verifier scenario or did not come back; it was quarantined.",
    ),
    _category(
        "Lab infrastructure",
        Outcome.INFRASTRUCTURE_ERROR,
        "Network, WinRM/SSH, switch or lease trouble after the plan's retries.",
    ),
    _category("Harness bugs", Outcome.HARNESS_BUG, "An internal invariant of the harness broke."),
    _category(
        "Observations of undocumented behaviour",
        Outcome.OBSERVED,
        "Passed; an unverified expectation differed from what was observed (recorded, not failed).",
    ),
    _category(
        "Not run", Outcome.NOT_RUN, "Not run: quarantined DUT, aborted run, deselected scenario."
    ),
]


def atomic_write(path: Path, data: str) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename;
    the file is private (0600) and a missing directory is created private (0700)."""
    write_private(path, data)


def write_categories(results_dir: Path) -> Path:
    path = results_dir / CATEGORIES_FILE
    atomic_write(path, json.dumps(CATEGORIES, indent=2) + "\n")
    return path


# --- environment.properties ------------------------------------------------------------------


def _escape(text: str, *, key: bool) -> str:
    """Escape for a Java properties file (java.util.Properties.store): the output is pure ASCII."""
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\f":
            out.append("\\f")
        elif ch in "=:#!":
            out.append("\\" + ch)
        elif ch == " " and (key or i == 0):
            out.append("\\ ")
        elif not " " <= ch <= "~":
            # \\uXXXX per UTF-16 code unit (surrogate pairs for characters beyond the BMP).
            for unit in _utf16_units(ch):
                out.append(f"\\u{unit:04X}")
        else:
            out.append(ch)
    return "".join(out)


def _utf16_units(ch: str) -> Iterable[int]:
    data = ch.encode("utf-16-be")
    return (int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def format_properties(props: Mapping[str, str]) -> str:
    return "".join(
        f"{_escape(str(k), key=True)}={_escape(str(v), key=False)}\n" for k, v in props.items()
    )


def write_environment(results_dir: Path, props: Mapping[str, str]) -> Path:
    path = results_dir / ENVIRONMENT_FILE
    atomic_write(path, format_properties(props))
    return path


_DMAGUARD_NAMES = {0: "block all", 1: "only after sign-in", 2: "allow all"}


def dmaguard_text(value: object) -> str:
    """`DeviceEnumerationPolicy` as a human reads it (CSP numbering)."""
    if value is None or value == "absent":
        return "not configured"
    try:
        number = int(str(value))
    except ValueError:
        return str(value)
    name = _DMAGUARD_NAMES.get(number)
    return f"{number} ({name})" if name else str(number)


def on_off(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def verifier_text(verifier: object) -> str:
    """The Driver Verifier state of a facts file: `off`, or its flags and target drivers."""
    if not isinstance(verifier, Mapping):
        return "unknown" if verifier is None else str(verifier)
    flags = verifier.get("flags")
    drivers = [str(d) for d in verifier.get("drivers") or []]
    if flags in (None, 0, "0", "") and not drivers:
        return "off"
    flag_text = f"0x{flags:X}" if isinstance(flags, int) else str(flags)
    return f"flags {flag_text}, drivers {', '.join(drivers) or '(none)'}"


def build_text(facts: Mapping[str, Any]) -> str:
    build = facts.get("build")
    if build is None:
        return "unknown"
    ubr = facts.get("ubr")
    return f"{build}.{ubr}" if ubr is not None else str(build)


def packages_of(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `packages` list of a facts file, keeping only well-formed entries."""
    return [p for p in facts.get("packages") or [] if isinstance(p, dict)]


def environment_from(run_dir: RunDir) -> dict[str, str]:
    """environment.properties content of a run, from run.json and facts/<dut>.json."""
    info = run_dir.read_info()
    props: dict[str, str] = {
        "harness.version": info.harness_version,
        "run.id": info.run_id,
        "plan": info.plan_name,
        "purpose": info.purpose,
        "lab.file": info.lab,
        "lab.sha256": info.lab_sha256,
    }
    for dut, facts in run_dir.read_facts().items():
        name = str(facts.get("dut") or dut)
        product = facts.get("product_name") or facts.get("edition")
        props[f"{name}.build"] = build_text(facts) + (f" ({product})" if product else "")
        props[f"{name}.kdp"] = on_off(facts.get("kdp"))
        props[f"{name}.dmaguard_policy"] = dmaguard_text(facts.get("dmaguard_policy"))
        props[f"{name}.verifier"] = verifier_text(facts.get("verifier"))
        props[f"{name}.test_signing"] = on_off(facts.get("test_signing"))
        for pkg in packages_of(facts):
            pname = str(pkg.get("name") or pkg.get("inf") or "package")
            props[f"{name}.driver.{pname}.version"] = str(pkg.get("version") or "unknown")
            props[f"{name}.driver.{pname}.signer"] = str(pkg.get("signer") or "unknown")
    return props


# --- observations ----------------------------------------------------------------------------


def _observation_message(labels: Iterable[Any]) -> str | None:
    values = [
        str(label.get("value", ""))
        for label in labels
        if isinstance(label, dict) and label.get("name") == OBSERVATION_LABEL
    ]
    values = [v for v in values if v.strip()]
    if not values:
        return None
    prefix = MESSAGE_PREFIX[Outcome.OBSERVED]
    text = "\n".join(values)
    return text if text.startswith(prefix) else f"{prefix} {text}"


def mark_observations(results_dir: Path) -> list[Path]:
    """Give each passed result labelled `observation` that label as its status message, and
    the status of an observation (`Outcome.OBSERVED.allure_status`, "unknown"), so the
    overview does not count an observation of undocumented behaviour as a plain pass.

    Returns the result files changed (none on a second call: it is idempotent).
    """
    observed = Outcome.OBSERVED.allure_status
    changed: list[Path] = []
    for path in sorted(results_dir.glob("*-result.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge; Allure reports unreadable files itself
        if not isinstance(data, dict) or data.get("status") not in ("passed", observed):
            continue
        message = _observation_message(data.get("labels") or [])
        if message is None:
            continue
        details = data.get("statusDetails")
        details = dict(details) if isinstance(details, dict) else {}
        if details.get("message") == message and data.get("status") == observed:
            continue
        details["message"] = message
        data["statusDetails"] = details
        data["status"] = observed
        atomic_write(path, json.dumps(data, ensure_ascii=False))
        changed.append(path)
    return changed
