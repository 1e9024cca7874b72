"""The qualification bundle of a run of a `qualification` plan: what a release manager signs.

    reports/<run-id>/qualification/
      results.json     run, device(s), driver package(s), per-DUT state, the matrix, the
                       observations of undocumented behaviour, counts and the verdict
      summary.html     the same on one self-contained page (inline CSS, no script, no link):
                       the verdict, a banner when the lab was virtual, each package's identity
                       (INF DriverVer, Provider, Class, CatalogFile, hardware IDs, signer, the
                       sha256 of every file), expected and observed per scenario, a sign-off block
      summary.pdf      summary.html printed by headless Chromium, when Chromium is installed
      manifest.json    sha256 and size of every evidence file of the run directory
      manifest.sha256  the same in `sha256sum` format, paths relative to the run directory

Check a bundle with `harness`-free tools, from the run directory:

    sha256sum -c qualification/manifest.sha256

or in Python with `verify_manifest(run_dir)` (which also reports files added since).

The verdict is `qualified` only if every selected scenario (run.json `scenarios`) has a journal
line and every journal outcome is passed or observed; a selected scenario without a line is
`not-run`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.errors import InfrastructureError
from harness.outcomes import MESSAGE_PREFIX, Outcome
from harness.report.allure_files import (
    atomic_write,
    build_text,
    dmaguard_text,
    on_off,
    packages_of,
    verifier_text,
)
from harness.report.journal import Journal, JournalEntry
from harness.report.matrix import lab_is_virtual
from harness.report.pdf import print_pdf
from harness.report.run_dir import RunDir

log = logging.getLogger(__name__)
PDF_FILE = "summary.pdf"
QUALIFIED = "qualified"
#: What a package's INF says about itself (facts/<dut>.json, per package).
IDENTITY_KEYS = ("driver_ver", "provider", "class", "class_guid", "catalog", "hardware_ids")
NOT_QUALIFIED = "not qualified"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.html"
MANIFEST_FILE = "manifest.json"
CHECKSUMS_FILE = "manifest.sha256"
#: The columns of the matrix grid, from the journal line's `conditions`.
CONDITION_COLUMNS = ("kdp", "dmaguard", "verifier_dma", "test_signing", "session", "port")
_CHUNK = 1 << 20


# --- results.json ----------------------------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    return []


def _row(entry: JournalEntry) -> dict[str, Any]:
    extra = entry.extra
    return {
        "scenario": entry.scenario,
        "dut": entry.dut,
        "outcome": entry.outcome.value,
        "conditions": _dict(extra.get("conditions")),
        "expected": _dict(extra.get("expected")),
        "observed": _dict(extra.get("observed")),
        "observations": _str_list(extra.get("observations")),
        "evidence_level": entry.evidence_level,
        "message": str(extra.get("message") or ""),
        "attempts": extra.get("attempts"),
        "started": entry.started,
        "duration_s": entry.duration_s,
    }


def _missing_row(scenario: str, duts: set[str]) -> dict[str, Any]:
    # Scenario ids begin with the DUT name (`tb-01.w11-22631...`): use it when it is a known DUT.
    head = scenario.split(".", 1)[0]
    return {
        "scenario": scenario,
        "dut": head if head in duts else None,
        "outcome": Outcome.NOT_RUN.value,
        "conditions": {},
        "expected": {},
        "observed": {},
        "observations": [],
        "evidence_level": None,
        "message": f"{MESSAGE_PREFIX[Outcome.NOT_RUN]} selected, but the journal has no result",
        "attempts": None,
        "started": None,
        "duration_s": None,
    }


def matrix(
    selected: Iterable[str], entries: Iterable[JournalEntry], duts: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One row per scenario: the selected ones in plan order, then any other journal scenario.

    The last journal line of a scenario wins (a rerun supersedes the earlier line). A selected
    scenario without a line is `not-run`, on the DUT its id names if that is one of `duts`.
    """
    latest: dict[str, JournalEntry] = {}
    for entry in entries:
        latest[entry.scenario] = entry
    known = {*duts, *(e.dut for e in latest.values())}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for scenario in selected:
        if scenario in seen:
            continue
        seen.add(scenario)
        found = latest.get(scenario)
        rows.append(_row(found) if found else _missing_row(scenario, known))
    rows.extend(_row(e) for s, e in latest.items() if s not in seen)
    return rows


def verdict(rows: Iterable[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """(`qualified` | `not qualified`, the reasons it is not)."""
    reasons: list[str] = []
    count = 0
    for row in rows:
        count += 1
        outcome = Outcome(row["outcome"])
        if outcome.is_pass:
            continue
        where = f" on {row['dut']}" if row.get("dut") else ""
        message = f": {row['message']}" if row.get("message") else ""
        reasons.append(f"{row['scenario']}{where}: {outcome.value}{message}")
    if count == 0:
        reasons.append("no scenario was selected or run")
    return (NOT_QUALIFIED if reasons else QUALIFIED), reasons


def _dut_state(name: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dut": name,
        "os_build": build_text(facts),
        "edition": facts.get("edition"),
        "product_name": facts.get("product_name"),
        "kdp": on_off(facts.get("kdp")),
        "dmaguard_policy": dmaguard_text(facts.get("dmaguard_policy")),
        "verifier": verifier_text(facts.get("verifier")),
        "verifier_raw": facts.get("verifier"),
        "test_signing": on_off(facts.get("test_signing")),
    }


def _packages(all_facts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct driver package (same name, version, signer, files) once, with its DUTs."""
    out: dict[str, dict[str, Any]] = {}
    for dut, facts in all_facts.items():
        for pkg in packages_of(facts):
            files = {str(k): str(v) for k, v in _dict(pkg.get("files")).items()}
            record = {
                "name": pkg.get("name"),
                "inf": pkg.get("inf"),
                "version": pkg.get("version"),
                "signer": pkg.get("signer"),
                "signer_thumbprints": sorted(str(t) for t in pkg.get("signer_thumbprints") or []),
                "signature_evidence": pkg.get("signature_evidence") or "",
                # the INF's own identity (harness.lab.package_identity), recorded while installed
                **{k: pkg.get(k) for k in IDENTITY_KEYS if k in pkg},
                "files": dict(sorted(files.items())),
            }
            key = json.dumps(record, sort_keys=True)
            entry = out.setdefault(key, {**record, "published_names": {}, "duts": []})
            entry["duts"].append(dut)
            if pkg.get("published_name"):
                entry["published_names"][dut] = pkg.get("published_name")
    return list(out.values())


def _devices(rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    seen: dict[str, Any] = {}
    for row in rows:
        device = row["conditions"].get("device")
        if device not in (None, "", {}):
            seen.setdefault(json.dumps(device, sort_keys=True, default=str), device)
    return list(seen.values())


def results(run_dir: RunDir) -> dict[str, Any]:
    """The content of results.json, from run.json, facts/ and journal.jsonl."""
    info = run_dir.read_info()
    all_facts = run_dir.read_facts()
    duts = [str(f.get("dut") or name) for name, f in all_facts.items()]
    rows = matrix(info.scenarios, Journal(run_dir.journal).read(), duts)
    decision, reasons = verdict(rows)
    counts = {o.value: 0 for o in Outcome}
    for row in rows:
        counts[row["outcome"]] += 1
    observations = [
        {"scenario": row["scenario"], "dut": row["dut"], "observation": text}
        for row in rows
        for text in row["observations"]
    ]
    return {
        "format": 1,
        "run": asdict(info),
        "virtual_lab": lab_is_virtual(run_dir),
        "devices": _devices(rows),
        "driver_packages": _packages(all_facts),
        "duts": [
            _dut_state(str(facts.get("dut") or name), facts) for name, facts in all_facts.items()
        ],
        "matrix": rows,
        "observations": observations,
        "counts": counts,
        "verdict": decision,
        "reasons": reasons,
    }


# --- summary.html ----------------------------------------------------------------------------

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;font-size:13px}
.verdict{font-size:44px;font-weight:800;letter-spacing:1px;padding:14px 22px;margin:18px 0;
display:inline-block;border-radius:6px;border:3px solid}
.v-ok{color:#0b6b2f;border-color:#0b6b2f;background:#e6f5ea}
.v-bad{color:#a31515;border-color:#a31515;background:#fbe9e9}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{border:1px solid #c8cdd3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.mono,span.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
tr.dut th{background:#dde3ea;font-size:14px}
td.o{font-weight:700;text-align:center;white-space:nowrap}
td.o-passed{background:#2e9e4f;color:#fff}td.o-failed{background:#c62828;color:#fff}
td.o-observed{background:#1e6fd0;color:#fff}td.o-other{background:#8a8f96;color:#fff}
ul.reasons li,ul.obs li{margin:3px 0}
.virtual{font-size:18px;font-weight:800;color:#7a4f00;background:#fff3cd;border:3px solid #d39e00;
padding:10px 14px;margin:8px 0}
table.signoff td{height:34px;min-width:180px}
"""

#: The sign-off block at the end of summary.html: who reviewed the bundle and approved it.
SIGN_OFF = [
    "<h2>Sign-off</h2>",
    "<p>I have reviewed the verdict, the matrix, the observations and the identity of the driver "
    "package above, and checked the manifest (<code>sha256sum -c "
    "qualification/manifest.sha256</code>).</p>",
    '<table class="signoff"><tr><th>role</th><th>name</th><th>signature</th><th>date</th></tr>',
    "<tr><td>Test engineer</td><td></td><td></td><td></td></tr>",
    "<tr><td>Release manager</td><td></td><td></td><td></td></tr></table>",
]


def expected_text(expected: Mapping[str, Any]) -> str:
    """`DEVPKEY 1; blocked (Code 55); starts after unlock` from a journal `expected`."""
    if not expected:
        return ""
    parts = [f"DEVPKEY {expected.get('devpkey')}"]
    if expected.get("starts_at_plug"):
        parts.append("starts at plug")
    else:
        parts.append(f"blocked (Code {expected.get('problem_code')})")
    if expected.get("starts_after_unlock") is not None:
        parts.append("starts after unlock" if expected["starts_after_unlock"] else "stays blocked")
    return "; ".join(parts)


def observed_text(observed: Mapping[str, Any]) -> str:
    """The same words for a journal `observed`."""
    plug = observed.get("at_plug") if isinstance(observed.get("at_plug"), dict) else None
    if not plug:
        return ""
    parts = [f"DEVPKEY {plug.get('dma_policy') if plug.get('dma_policy') is not None else '-'}"]
    if plug.get("started"):
        parts.append("started at plug")
    else:
        parts.append(f"blocked (Code {plug.get('problem_code')})")
    after = observed.get("after_unlock")
    if isinstance(after, dict):
        parts.append("started after unlock" if after.get("started") else "still blocked")
    return "; ".join(parts)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell_class(outcome: str) -> str:
    o = Outcome(outcome)
    if o is Outcome.PASSED:
        return "o-passed"
    if o is Outcome.OBSERVED:
        return "o-observed"
    if o in (Outcome.FAILED, Outcome.EXPECTATION_MAY_BE_WRONG):
        return "o-failed"
    return "o-other"


def _condition_text(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    out.extend("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    out.append("</table>")
    return out


def summary_html(data: Mapping[str, Any]) -> str:
    """One self-contained page: no script, no external reference, every value escaped."""
    run = data["run"]
    ok = data["verdict"] == QUALIFIED
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Qualification: {_e(run.get('plan_name'))} {_e(run.get('run_id'))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Qualification of {_e(run.get('plan_name'))}</h1>",
        f'<div class="meta">run {_e(run.get("run_id"))} &middot; started {_e(run.get("started"))}'
        f" &middot; finished {_e(run.get('finished') or 'not finished')}"
        f" &middot; harness {_e(run.get('harness_version'))}"
        f" &middot; lab {_e(run.get('lab'))} (sha256 {_e(run.get('lab_sha256'))})</div>",
        f'<div class="verdict {"v-ok" if ok else "v-bad"}">{_e(data["verdict"].upper())}</div>',
    ]
    if data.get("virtual_lab"):
        parts.append(
            '<div class="virtual" id="virtual-banner">VIRTUAL LAB: every result below comes from '
            "the harness's simulated Windows, not from hardware. It proves the test plan and the "
            "harness, not the device or its driver.</div>"
        )
    if data["reasons"]:
        parts.append('<ul class="reasons">')
        parts.extend(f"<li>{_e(r)}</li>" for r in data["reasons"])
        parts.append("</ul>")
    counts = {k: v for k, v in data["counts"].items() if v}
    parts.append("<h2>Counts</h2>")
    parts.extend(
        _table(list(counts) or ["scenarios"], [[str(v) for v in counts.values()] or ["0"]])
    )

    parts.append("<h2>Device</h2>")
    devices = data["devices"]
    if devices:
        parts.append("<ul>")
        parts.extend(
            f'<li><span class="mono">{_e(_condition_text(d))}</span></li>' for d in devices
        )
        parts.append("</ul>")
    else:
        parts.append("<p>No device recorded in the journal.</p>")

    parts.append("<h2>Driver packages</h2>")
    if not data["driver_packages"]:
        parts.append("<p>No driver package recorded in the DUT facts.</p>")
    for pkg in data["driver_packages"]:
        parts.append(
            f"<p><b>{_e(pkg.get('name'))}</b> ({_e(pkg.get('inf'))}) version "
            f"{_e(pkg.get('version'))}, signed by {_e(pkg.get('signer'))}, on "
            f"{_e(', '.join(pkg.get('duts', [])))}</p>"
        )
        identity = [
            (label, pkg.get(key))
            for key, label in (
                ("driver_ver", "DriverVer"),
                ("provider", "Provider"),
                ("class", "Class"),
                ("class_guid", "ClassGuid"),
                ("catalog", "CatalogFile"),
                ("hardware_ids", "hardware IDs"),
                ("signer_thumbprints", "signer thumbprint (SHA-1)"),
                ("signature_evidence", "signatures checked"),
            )
            if pkg.get(key)
        ]
        if identity:
            parts.extend(
                _table(
                    ["INF", "value"],
                    [[k, ", ".join(v) if isinstance(v, list) else str(v)] for k, v in identity],
                )
            )
        parts.append("<table><tr><th>file</th><th>sha256</th></tr>")
        parts.extend(
            f'<tr><td class="mono">{_e(name)}</td><td class="mono">{_e(digest)}</td></tr>'
            for name, digest in pkg.get("files", {}).items()
        )
        parts.append("</table>")

    parts.append("<h2>DUTs</h2>")
    parts.extend(
        _table(
            ["DUT", "OS build", "product", "KDP", "DMAGuard policy", "Verifier", "test signing"],
            [
                [
                    d["dut"],
                    d["os_build"],
                    d.get("product_name") or d.get("edition") or "",
                    d["kdp"],
                    d["dmaguard_policy"],
                    d["verifier"],
                    d["test_signing"],
                ]
                for d in data["duts"]
            ],
        )
    )

    parts.append("<h2>Matrix</h2>")
    headers = [
        "scenario",
        *CONDITION_COLUMNS,
        "expected",
        "observed",
        "outcome",
        "evidence",
        "message",
    ]
    parts.append("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in data["matrix"]:
        groups.setdefault(row["dut"] or "(not assigned to a DUT)", []).append(row)
    for dut, rows in groups.items():
        parts.append(f'<tr class="dut"><th colspan="{len(headers)}">{_e(dut)}</th></tr>')
        for row in rows:
            cond = row["conditions"]
            cells = [f'<td class="mono">{_e(row["scenario"])}</td>']
            cells.extend(f"<td>{_e(_condition_text(cond.get(c)))}</td>" for c in CONDITION_COLUMNS)
            cells.append(f"<td>{_e(expected_text(row['expected']))}</td>")
            cells.append(f"<td>{_e(observed_text(row['observed']))}</td>")
            cells.append(f'<td class="o {_cell_class(row["outcome"])}">{_e(row["outcome"])}</td>')
            cells.append(f"<td>{_e(row['evidence_level'])}</td>")
            cells.append(f"<td>{_e(row['message'])}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")

    parts.append("<h2>Observations of undocumented behaviour</h2>")
    if data["observations"]:
        parts.append('<ul class="obs">')
        parts.extend(
            f'<li><span class="mono">{_e(o["scenario"])}</span> on {_e(o["dut"])}: '
            f"{_e(o['observation'])}</li>"
            for o in data["observations"]
        )
        parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    parts.extend(SIGN_OFF)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- manifest --------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _excluded(rel: str) -> bool:
    return rel in (f"qualification/{MANIFEST_FILE}", f"qualification/{CHECKSUMS_FILE}") or (
        rel.startswith("progress/")
    )


def evidence_files(run_dir: RunDir) -> list[str]:
    """Every regular file of the run directory (not symlinks) but progress/ and the manifest,
    as POSIX paths relative to it, sorted."""
    root = run_dir.path
    out = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if not _excluded(rel):
            out.append(rel)
    return sorted(out)


def _checksum_line(digest: str, rel: str) -> str:
    """One `sha256sum` line; names with a backslash or newline are escaped as GNU does."""
    if "\\" in rel or "\n" in rel:
        return "\\" + digest + "  " + rel.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{digest}  {rel}\n"


def write_manifest(run_dir: RunDir, *, run_id: str) -> Path:
    files: list[dict[str, Any]] = []
    for rel in evidence_files(run_dir):
        path = run_dir.path / rel
        files.append({"path": rel, "sha256": _sha256(path), "size": path.stat().st_size})
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    manifest = {"run_id": run_id, "created": created, "algorithm": "sha256", "files": files}
    target = run_dir.qualification / MANIFEST_FILE
    atomic_write(target, json.dumps(manifest, indent=2) + "\n")
    atomic_write(
        run_dir.qualification / CHECKSUMS_FILE,
        "".join(_checksum_line(f["sha256"], f["path"]) for f in files),
    )
    return target


def verify_manifest(run_dir: RunDir) -> list[str]:
    """The problems of the bundle's manifest: missing, changed and unlisted files (empty: OK)."""
    path = run_dir.qualification / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed = {str(f["path"]): f for f in manifest["files"]}
    except FileNotFoundError:
        return [f"{path}: no manifest"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{path}: unreadable manifest: {exc}"]
    if manifest.get("algorithm") != "sha256":
        return [f"{path}: unknown algorithm {manifest.get('algorithm')!r}"]
    problems: list[str] = []
    root = run_dir.path.resolve()
    for rel, entry in sorted(listed.items()):
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or _excluded(rel):
            problems.append(f"not an evidence path: {rel}")
        elif not target.is_file():
            problems.append(f"missing: {rel}")
        elif target.stat().st_size != entry.get("size") or _sha256(target) != entry.get("sha256"):
            problems.append(f"changed: {rel}")
    problems.extend(
        f"not in manifest: {rel}" for rel in evidence_files(run_dir) if rel not in listed
    )
    return problems


# --- the bundle ------------------------------------------------------------------------------


def write_bundle(run_dir: RunDir) -> Path:
    """Write `qualification/` (results.json, summary.html, then the manifest); return the dir.

    Render report.html first: the manifest covers the files present when it is written.
    """
    data = results(run_dir)
    out = run_dir.qualification
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / RESULTS_FILE, json.dumps(data, indent=2, default=str) + "\n")
    atomic_write(out / SUMMARY_FILE, summary_html(data))
    try:  # a printable copy, when Chromium is installed; the manifest then covers it
        print_pdf(out / SUMMARY_FILE, out / PDF_FILE)
    except InfrastructureError as exc:
        log.warning("summary.pdf not printed: %s", exc)
    write_manifest(run_dir, run_id=data["run"]["run_id"])
    return out
