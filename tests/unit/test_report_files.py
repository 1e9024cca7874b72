"""The files the harness writes next to allure-pytest's and the qualification bundle: categories,
environment.properties, observation messages, results.json verdict, summary.html, manifest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.outcomes import Outcome
from harness.report.allure_files import (
    CATEGORIES,
    environment_from,
    format_properties,
    mark_observations,
    write_categories,
    write_environment,
)
from harness.report.journal import Journal, JournalEntry
from harness.report.qualification import (
    NOT_QUALIFIED,
    QUALIFIED,
    results,
    verify_manifest,
    write_bundle,
)
from harness.report.run_dir import RunDir, RunInfo

# --- categories ------------------------------------------------------------------------------


def classify(status: str, message: str) -> str | None:
    """What Allure does: the first category whose statuses and message pattern match."""
    for category in CATEGORIES:
        if status in category["matchedStatuses"] and re.fullmatch(
            category["messageRegex"], message
        ):
            return str(category["name"])
    return None


@pytest.mark.parametrize(
    ("status", "message", "category"),
    [
        ("failed", "product defect: DEVPKEY was OptIn", "Product defects"),
        (
            "failed",
            "AssertionError: product defect: DEVPKEY was OptIn\nexpected Blocked\nassert False",
            "Product defects",
        ),
        (
            "failed",
            "harness.errors.TestFailure: expectation may be wrong: started while locked",
            "Expectation may be wrong",
        ),
        ("broken", "harness.errors.DutError: DUT error: bugcheck 0xE6\n(dump)", "DUT errors"),
        ("broken", "lab infrastructure: WinRM timed out", "Lab infrastructure"),
        ("broken", "harness bug: invariant broke", "Harness bugs"),
        (
            "unknown",  # an observation is not counted as a plain pass
            "observation: the device started\nwhile locked",
            "Observations of undocumented behaviour",
        ),
        ("passed", "observation: the device started\nwhile locked", None),
        ("skipped", "Skipped: not run: tb-02 quarantined", "Not run"),
        # The wrong status for the prefix, or the prefix not at the start: no category.
        ("broken", "product defect: x", None),
        ("failed", "AssertionError: expected 'product defect: x'", None),
        ("failed", "lab infrastructure: product defect: x", None),
        ("passed", "", None),
    ],
)
def test_categories_classify_messages(status: str, message: str, category: str | None) -> None:
    assert classify(status, message) == category


def test_categories_file_is_the_taxonomy(tmp_path: Path) -> None:
    path = write_categories(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [c["name"] for c in data] == [
        "Product defects",
        "Expectation may be wrong",
        "DUT errors",
        "Lab infrastructure",
        "Harness bugs",
        "Observations of undocumented behaviour",
        "Not run",
    ]
    for c in data:
        assert "(?s)" not in c["messageRegex"]
        # A pattern that compiles the same in JavaScript: no Python-only syntax.
        assert not re.search(r"\(\?P|\(\?[aiLmsux]", c["messageRegex"])


# --- environment.properties ------------------------------------------------------------------


def parse_properties(text: str) -> dict[str, str]:
    """A reader of the Java properties format (java.util.Properties.load), for the round trip."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in "#!":
            continue
        key: list[str] = []
        value: list[str] = []
        target, i, separated = key, 0, False
        while i < len(line):
            ch = line[i]
            if ch == "\\":
                i += 1
                nxt = line[i]
                if nxt == "u":
                    target.append(chr(int(line[i + 1 : i + 5], 16)))
                    i += 4
                else:
                    target.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
            elif not separated and ch in "=: ":
                separated, target = True, value
            else:
                target.append(ch)
            i += 1
        raw = "".join(value)
        out["".join(key)] = raw.encode("utf-16", "surrogatepass").decode("utf-16")
    return out


def test_properties_escape_and_round_trip(tmp_path: Path) -> None:
    props = {
        "tb-01.driver.nvme inf2.signer": "CN=Contoso, O=Contoso Ltd: Zürich",
        "key=with:separators#!": " leading space\nsecond line\\tab\t",
        "emoji": "\U0001f600 ok",
        "#comment-like": "!bang",
    }
    text = write_environment(tmp_path, props).read_text(encoding="ascii")
    assert text.isascii()
    assert len(text.splitlines()) == len(props)
    assert "tb-01.driver.nvme\\ inf2.signer=CN\\=Contoso, O\\=Contoso Ltd\\: Z\\u00FCrich" in text
    assert "\\#comment-like=\\!bang" in text
    assert parse_properties(text) == props


def test_properties_round_trip_through_allures_own_parser(tmp_path: Path) -> None:
    """The parser Allure 3 uses on environment.properties reads back the same values."""
    node = shutil.which("node")
    parser = (
        Path(__file__).resolve().parents[2] / "node_modules/@allurereport/reader/dist/properties.js"
    )
    if node is None or not parser.is_file():
        pytest.fail("node and node_modules are needed (run `npm ci` in the repository)")
    props = {"a b": "x=y: z", "k": " v\n2\\", "ü": "\U0001f600"}
    src = tmp_path / "p.properties"
    src.write_text(format_properties(props), encoding="ascii")
    script = (
        f"import({json.dumps(parser.as_uri())}).then(m => process.stdout.write("
        f"JSON.stringify(m.parseProperties(require('fs').readFileSync({json.dumps(str(src))},"
        f" 'utf8')))))"
    )
    r = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == props


def make_run(
    tmp_path: Path, *, scenarios: list[str] | None = None, purpose: str = "qualification"
) -> RunDir:
    rd = RunDir(tmp_path / "20261121-1000-qual")
    rd.create()
    rd.write_info(
        RunInfo(
            run_id="20261121-1000-qual",
            plan="testplans/tb_release_qualification.yaml",
            plan_name="tb_release_qualification",
            purpose=purpose,
            lab="lab_config/virtual.yaml",
            lab_sha256="ab" * 32,
            harness_version="0.1.0",
            started="2026-11-21T10:00:00Z",
            scenarios=scenarios or [],
        )
    )
    facts = {
        "dut": "tb-01",
        "build": 22631,
        "ubr": 4460,
        "edition": "Enterprise",
        "product_name": "Windows 11 Enterprise",
        "kdp": True,
        "dmaguard_policy": 0,
        "verifier": {"flags": 128, "drivers": ["dmalab_nvme.sys"]},
        "test_signing": False,
        "packages": [
            {
                "name": "nvme-inf2",
                "inf": "dmalab_nvme_inf2.inf",
                "published_name": "oem3.inf",
                "version": "1.2.3.4",
                "signer": "Contoso <Test> & Co",
                "files": {"dmalab_nvme.sys": "0f" * 32, "dmalab_nvme.cat": "1e" * 32},
            }
        ],
    }
    (rd.facts / "tb-01.json").write_text(json.dumps(facts), encoding="utf-8")
    (rd.facts / "tb-02.json").write_text(json.dumps({"dut": "tb-02"}), encoding="utf-8")
    return rd


def test_environment_from_run_and_facts(tmp_path: Path) -> None:
    env = environment_from(make_run(tmp_path))
    assert env["harness.version"] == "0.1.0"
    assert env["lab.sha256"] == "ab" * 32
    assert env["tb-01.build"] == "22631.4460 (Windows 11 Enterprise)"
    assert env["tb-01.kdp"] == "on"
    assert env["tb-01.dmaguard_policy"] == "0 (block all)"
    assert env["tb-01.verifier"] == "flags 0x80, drivers dmalab_nvme.sys"
    assert env["tb-01.driver.nvme-inf2.version"] == "1.2.3.4"
    assert env["tb-01.driver.nvme-inf2.signer"] == "Contoso <Test> & Co"
    # A facts file with nothing but the DUT name is tolerated.
    assert env["tb-02.build"] == "unknown"
    assert env["tb-02.kdp"] == "unknown"
    assert env["tb-02.dmaguard_policy"] == "not configured"


# --- observations ----------------------------------------------------------------------------


def result_file(directory: Path, name: str, status: str, labels: list[dict[str, str]]) -> Path:
    path = directory / f"{name}-result.json"
    data: dict[str, Any] = {"uuid": name, "name": name, "status": status, "labels": labels}
    if status != "passed":
        data["statusDetails"] = {"message": "AssertionError: product defect: x", "trace": "t"}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_mark_observations_only_touches_passed_labelled_results(tmp_path: Path) -> None:
    obs = {"name": "observation", "value": "observation: started while locked\n(build 22631)"}
    observed = result_file(tmp_path, "a", "passed", [obs, {"name": "suite", "value": "s"}])
    plain = result_file(tmp_path, "b", "passed", [{"name": "suite", "value": "s"}])
    failed = result_file(tmp_path, "c", "failed", [obs])
    container = tmp_path / "d-container.json"
    container.write_text(json.dumps({"labels": [obs], "status": "passed"}), encoding="utf-8")
    before = {p: p.read_bytes() for p in (plain, failed, container)}

    assert mark_observations(tmp_path) == [observed]

    data = json.loads(observed.read_text(encoding="utf-8"))
    assert data["statusDetails"]["message"] == obs["value"]
    assert data["labels"][0] == obs
    assert data["status"] == "unknown"  # not counted among the passes in the overview
    assert classify("unknown", data["statusDetails"]["message"]) == (
        "Observations of undocumented behaviour"
    )
    for path, content in before.items():
        assert path.read_bytes() == content
    # Idempotent: nothing to change the second time, and no temporary file left behind.
    stamp = observed.stat().st_mtime_ns
    assert mark_observations(tmp_path) == []
    assert observed.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-result.json",
        "b-result.json",
        "c-result.json",
        "d-container.json",
    ]


# --- qualification ---------------------------------------------------------------------------

S1 = "tb-01.w11-22631.inf2.external.dv-on.kdp-on.guard0.locked"
S2 = "tb-01.w11-22631.inf2.external.dv-on.kdp-on.guard0.unlocked"
S3 = "tb-02.w11-22631.inf2.external.dv-on.kdp-on.guard0.no-user"


def journal_line(
    rd: RunDir,
    scenario: str,
    outcome: Outcome,
    *,
    message: str = "",
    observations: list[str] | None = None,
) -> None:
    extra: dict[str, Any] = {
        "message": message,
        "conditions": {
            "kdp": "on",
            "dmaguard": "0",
            "verifier_dma": "on",
            "test_signing": False,
            "session": scenario.rsplit(".", 1)[1],
            "port": "external",
            "driver_package": "nvme-inf2",
            "device": {"vendor": "1E0F", "device": "0007", "name": "Contoso TB4 NVMe"},
        },
        "expected": {"policy": "Blocked"},
        "observed": {"policy": "Blocked"},
        "observations": observations or [],
        "attempts": 1,
    }
    Journal(rd.journal).append(
        JournalEntry(
            scenario,
            scenario.split(".")[0],
            outcome,
            "2026-11-21T10:00:00Z",
            12.5,
            "documented",
            extra,
        )
    )


def test_verdict_all_passed_is_qualified(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1, S2])
    journal_line(rd, S1, Outcome.PASSED)
    journal_line(rd, S2, Outcome.OBSERVED, observations=["observation: DMA while locked succeeded"])
    data = results(rd)
    assert data["verdict"] == QUALIFIED
    assert data["reasons"] == []
    assert data["counts"]["passed"] == 1
    assert data["counts"]["observed"] == 1
    assert [r["scenario"] for r in data["matrix"]] == [S1, S2]
    assert data["observations"] == [
        {"scenario": S2, "dut": "tb-01", "observation": "observation: DMA while locked succeeded"}
    ]
    assert data["devices"] == [{"vendor": "1E0F", "device": "0007", "name": "Contoso TB4 NVMe"}]
    (pkg,) = data["driver_packages"]
    assert pkg["signer"] == "Contoso <Test> & Co"
    assert pkg["files"]["dmalab_nvme.sys"] == "0f" * 32
    assert pkg["duts"] == ["tb-01"]
    duts = {d["dut"]: d for d in data["duts"]}
    assert duts["tb-01"]["os_build"] == "22631.4460"
    assert duts["tb-01"]["verifier"] == "flags 0x80, drivers dmalab_nvme.sys"


def test_verdict_one_failure_is_not_qualified_and_named(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1, S2])
    journal_line(rd, S1, Outcome.PASSED)
    journal_line(rd, S2, Outcome.FAILED, message="product defect: policy was ExternallyExposed")
    data = results(rd)
    assert data["verdict"] == NOT_QUALIFIED
    assert len(data["reasons"]) == 1
    assert S2 in data["reasons"][0]
    assert "failed" in data["reasons"][0]
    assert "ExternallyExposed" in data["reasons"][0]


def test_rerun_line_supersedes_the_earlier_one(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1])
    journal_line(rd, S1, Outcome.INFRASTRUCTURE_ERROR, message="lab infrastructure: WinRM")
    journal_line(rd, S1, Outcome.PASSED)
    data = results(rd)
    assert [r["outcome"] for r in data["matrix"]] == ["passed"]
    assert data["verdict"] == QUALIFIED


def test_missing_scenario_is_not_run_and_not_qualified(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1, S3])
    journal_line(rd, S1, Outcome.PASSED)
    data = results(rd)
    assert data["verdict"] == NOT_QUALIFIED
    missing = data["matrix"][1]
    assert missing["scenario"] == S3
    assert missing["outcome"] == "not-run"
    assert missing["dut"] == "tb-02"  # named by the id, a DUT of the facts
    assert data["counts"]["not-run"] == 1
    assert any(S3 in r and "not-run" in r for r in data["reasons"])


def test_nothing_selected_nothing_run_is_not_qualified(tmp_path: Path) -> None:
    assert results(make_run(tmp_path))["verdict"] == NOT_QUALIFIED


def test_summary_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1, S2, S3])
    journal_line(rd, S1, Outcome.PASSED)
    journal_line(
        rd,
        S2,
        Outcome.FAILED,
        message="product defect: <script>alert(1)</script> policy was OptIn",
        observations=["observation: <b>bold</b> & more"],
    )
    out = write_bundle(rd)
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "http" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert "Contoso &lt;Test&gt; &amp; Co" in page  # the signer
    assert "0f" * 32 in page  # a file hash
    assert "NOT QUALIFIED" in page
    assert re.search(r"<link|<img|<iframe|url\(|@import|src=", page, re.I) is None
    # Coloured outcome cells: one per matrix row.
    assert page.count('class="o o-passed"') == 1
    assert page.count('class="o o-failed"') == 1
    assert page.count('class="o o-other"') == 1  # S3: not run
    # Rows grouped by DUT.
    grid = page[page.index("<h2>Matrix</h2>") :]
    assert grid.index(">tb-01</th>") < grid.index(S1) < grid.index(">tb-02</th>") < grid.index(S3)
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["verdict"] == NOT_QUALIFIED


def test_summary_html_urls_in_messages_stay_text(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1])
    journal_line(
        rd,
        S1,
        Outcome.FAILED,
        message='product defect: see https://example.com/x" onload="fetch(1)',
    )
    page = (write_bundle(rd) / "summary.html").read_text(encoding="utf-8")
    assert "https://example.com/x&quot; onload=&quot;fetch(1)" in page
    assert re.search(r"<[^>]*http", page) is None  # never inside a tag or an attribute


# --- manifest --------------------------------------------------------------------------------


def test_manifest_lists_evidence_and_verify_detects_changes(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1])
    journal_line(rd, S1, Outcome.PASSED)
    rd.junit.write_text("<testsuites/>", encoding="utf-8")
    rd.report_html.write_text("<html></html>", encoding="utf-8")
    (rd.allure_results / "x-result.json").write_text("{}", encoding="utf-8")
    (rd.progress / "tb-01.json").write_text("{}", encoding="utf-8")
    out = write_bundle(rd)

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_id"] == "20261121-1000-qual"
    assert manifest["algorithm"] == "sha256"
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    assert paths == [
        "allure-results/x-result.json",
        "facts/tb-01.json",
        "facts/tb-02.json",
        "journal.jsonl",
        "junit.xml",
        "qualification/results.json",
        "qualification/summary.html",
        "qualification/summary.pdf",  # printed by headless Chromium (the tests need it)
        "report.html",
        "run.json",
    ]
    sizes = {f["path"]: f["size"] for f in manifest["files"]}
    assert sizes["junit.xml"] == len("<testsuites/>")
    assert verify_manifest(rd) == []

    # The same check with coreutils, as a release manager would do it.
    sha256sum = shutil.which("sha256sum")
    assert sha256sum, "coreutils sha256sum is needed"
    ok = subprocess.run(
        [sha256sum, "--check", "--strict", "qualification/manifest.sha256"],
        cwd=rd.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr

    rd.junit.write_text("<testsuites tampered='1'/>", encoding="utf-8")
    (rd.facts / "tb-02.json").unlink()
    (rd.facts / "tb-03.json").write_text("{}", encoding="utf-8")
    (rd.progress / "tb-01.json").write_text('{"step": 2}', encoding="utf-8")  # not evidence
    assert verify_manifest(rd) == [
        "missing: facts/tb-02.json",
        "changed: junit.xml",
        "not in manifest: facts/tb-03.json",
    ]
    bad = subprocess.run(
        [sha256sum, "--check", "--quiet", "qualification/manifest.sha256"],
        cwd=rd.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "junit.xml: FAILED" in bad.stdout


def test_verify_manifest_without_manifest(tmp_path: Path) -> None:
    rd = make_run(tmp_path)
    (problem,) = verify_manifest(rd)
    assert "no manifest" in problem


def test_verify_manifest_rejects_paths_outside_the_run(tmp_path: Path) -> None:
    rd = make_run(tmp_path, scenarios=[S1])
    journal_line(rd, S1, Outcome.PASSED)
    out = write_bundle(rd)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].append({"path": "../outside", "sha256": "00" * 32, "size": 0})
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert verify_manifest(rd) == ["not an evidence path: ../outside"]


def test_the_allure_version_named_in_the_install_hint_is_the_pinned_one() -> None:
    import json

    from harness.report.render import ALLURE_VERSION, repo_root

    pinned = json.loads((repo_root() / "package.json").read_text())["devDependencies"]["allure"]
    assert pinned == ALLURE_VERSION
