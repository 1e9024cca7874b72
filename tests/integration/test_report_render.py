"""report.html end to end: real allure-pytest results, the pinned npm allure, headless Chromium,
and `harness report RUN_DIR` through the real command line."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.report.allure_files import CATEGORIES
from harness.report.qualification import QUALIFIED, verify_manifest
from harness.report.render import find_allure, history_file, render_report
from harness.report.run_dir import RunDir, RunInfo
from tests.chromium import page_requests, render_page, visible_text

ROOT = Path(__file__).resolve().parents[2]

SAMPLE_TESTS = """
import allure
import pytest


def test_plug_while_unlocked_starts():
    with allure.step("plug"):
        allure.attach("{\\"policy\\": \\"Blocked\\"}", "devpkey", allure.attachment_type.JSON)


def test_observed_behaviour():
    allure.dynamic.label("observation", "observation: DMA while locked succeeded\\non build 22631")


def test_policy_mismatch():
    assert False, "product defect: DmaRemappingPolicy was OptIn, expected Blocked"


def test_dut_crashed():
    raise RuntimeError("DUT error: bugcheck 0xE6 after unlock")


@pytest.mark.skip(reason="not run: tb-02 quarantined")
def test_quarantined():
    pass
"""

FACTS = {
    "dut": "tb-01",
    "build": 22631,
    "ubr": 4460,
    "edition": "Enterprise",
    "kdp": True,
    "dmaguard_policy": None,
    "verifier": {"flags": None, "drivers": []},
    "test_signing": False,
    "packages": [
        {
            "name": "nvme-inf2",
            "inf": "dmalab_nvme_inf2.inf",
            "version": "1.0.0.0",
            "signer": "Contoso Test Signing",
            "files": {"dmalab_nvme.sys": "ab" * 32},
        }
    ],
}


def allure_results(directory: Path, work: Path) -> None:
    """Run the sample tests with allure-pytest writing into `directory`."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "test_sample.py").write_text(SAMPLE_TESTS, encoding="utf-8")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:dma_lab_harness",  # plain tests: the harness's own plugin has no part in them
            "-p",
            "no:cacheprovider",
            "-q",
            f"--alluredir={directory}",
            "test_sample.py",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr  # 1: the sample has failures, on purpose
    assert len(list(directory.glob("*-result.json"))) == 5, r.stdout


def make_run_dir(root: Path, name: str, *, purpose: str, scenarios: list[str]) -> RunDir:
    rd = RunDir(root / name)
    rd.create()
    rd.write_info(
        RunInfo(
            run_id=name,
            plan="testplans/smoke.yaml",
            plan_name="smoke",
            purpose=purpose,
            lab="lab_config/virtual.yaml",
            lab_sha256="cd" * 32,
            harness_version="0.1.0",
            started="2026-11-21T10:00:00Z",
            scenarios=scenarios,
        )
    )
    (rd.facts / "tb-01.json").write_text(json.dumps(FACTS), encoding="utf-8")
    return rd


def embedded_test_cases(html: str) -> dict[str, dict[str, Any]]:
    """The test cases the single-file report embeds (base64 JSON), by name."""
    out = {}
    for data in re.findall(r'd\("data/test-cases/[^"]+","([A-Za-z0-9+/=]*)"\)', html):
        case = json.loads(base64.b64decode(data))
        out[case["name"]] = case
    return out


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("allure-src")
    allure_results(base / "results", base / "work")
    return base / "results"


@pytest.fixture(scope="module")
def rendered(
    results_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunDir, Path, list[float]]:
    """A run directory rendered twice with the same history file."""
    reports = tmp_path_factory.mktemp("reports")
    rd = make_run_dir(reports, "20261121-1000-smoke", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    history = history_file(reports, "smoke")
    times = []
    for _ in range(2):
        started = time.monotonic()
        out = render_report(rd, history=history, title="smoke 20261121-1000-smoke")
        times.append(time.monotonic() - started)
        assert out == rd.report_html
    return rd, history, times


def test_report_is_one_offline_file_with_trend_history(
    rendered: tuple[RunDir, Path, list[float]],
) -> None:
    rd, history, times = rendered
    assert rd.report_html.is_file()
    assert sorted(p.name for p in rd.path.iterdir()) == [
        "allure-results",
        "facts",
        "progress",
        "report.html",
        "run.json",
    ]
    html = rd.report_html.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert re.search(r"https?://", html) is None
    # Every src/href attribute of a tag is inline data (no file beside it, no host).
    refs = re.findall(r"""<[a-z][^>]*?\s(?:src|href)\s*=\s*["']?([^"'\s>]{0,12})""", html, re.I)
    assert refs, "the report has no src/href attribute at all: the check looks at nothing"
    assert [r for r in refs if not r.startswith("data:")] == []
    assert "<title>smoke 20261121-1000-smoke</title>" in html
    assert len(history.read_text(encoding="utf-8").splitlines()) == 2
    assert history == rd.path.parent / ".history" / "smoke.jsonl"
    print(f"render times: {', '.join(f'{t:.2f} s' for t in times)}")
    assert max(times) < 60


def test_report_data_has_categories_and_environment(
    rendered: tuple[RunDir, Path, list[float]],
) -> None:
    rd, _, _ = rendered
    html = rd.report_html.read_text(encoding="utf-8")
    cases = embedded_test_cases(html)
    categories = {
        name: [c["name"] for c in case.get("extra", {}).get("categories", [])]
        for name, case in cases.items()
    }
    assert categories == {
        "test_plug_while_unlocked_starts": [],
        "test_observed_behaviour": ["Observations of undocumented behaviour"],
        "test_policy_mismatch": ["Product defects"],
        "test_dut_crashed": ["DUT errors"],
        "test_quarantined": ["Not run"],
    }
    env = (rd.allure_results / "environment.properties").read_text(encoding="ascii")
    assert "tb-01.driver.nvme-inf2.signer=Contoso Test Signing" in env
    assert "lab.sha256=" + "cd" * 32 in env


def test_report_renders_in_a_browser_without_network(
    rendered: tuple[RunDir, Path, list[float]], tmp_path: Path
) -> None:
    rd, _, _ = rendered
    cases = embedded_test_cases(rd.report_html.read_text(encoding="utf-8"))
    uid = cases["test_observed_behaviour"]["uid"]
    dom, shot = render_page(rd.report_html, tmp_path / "result", fragment=f"testresult/{uid}")
    text = visible_text(dom)
    assert "test_observed_behaviour" in text
    assert "observation: DMA while locked succeeded" in text
    assert "Observations of undocumented behaviour" in text
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert page_requests(tmp_path / "result" / "netlog.json") == []

    dom, _ = render_page(rd.report_html, tmp_path / "categories", fragment="categories")
    text = visible_text(dom)
    for name in ("Product defects", "DUT errors", "Observations of undocumented behaviour"):
        assert name in text
    assert page_requests(tmp_path / "categories" / "netlog.json") == []


def test_page_requests_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """The network check above can fail: a page with external references is caught."""
    page = tmp_path / "fetches.html"
    page.write_text(
        '<html><body><p>probe</p><img src="http://example.invalid/x.png">'
        '<script>fetch("https://example.invalid/y.json").catch(() => {})</script>'
        "</body></html>",
        encoding="utf-8",
    )
    dom, _ = render_page(page, tmp_path / "probe")
    assert "probe" in visible_text(dom)
    assert sorted(page_requests(tmp_path / "probe" / "netlog.json")) == [
        "http://example.invalid/x.png",
        "https://example.invalid/y.json",
    ]


def test_render_failure_is_an_infrastructure_error(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd = make_run_dir(tmp_path, "run", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    fake = tmp_path / "allure"
    fake.write_text(
        "#!/bin/sh\necho 'RangeError: The report is too large to be generated in the single "
        "file mode!' >&2\nexit 1\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("HARNESS_ALLURE", str(fake))
    assert find_allure() == fake
    with pytest.raises(InfrastructureError, match="too large to be generated"):
        render_report(rd, history=None, title="t")
    assert not rd.report_html.exists()


def test_render_timeout_kills_the_tool(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd = make_run_dir(tmp_path, "run", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    fake = tmp_path / "allure"
    pid_file = tmp_path / "child.pid"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nwait\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("HARNESS_ALLURE", str(fake))
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="did not finish within 1 s"):
        render_report(rd, history=None, title="t", timeout_s=1)
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text(encoding="utf-8"))
    # The tool's own child was killed with it (its process group): no orphan left running.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{child}/stat").read_text(encoding="utf-8").split()[2]
        if state == "Z":
            break
        time.sleep(0.05)
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text(encoding="utf-8").split()[2] == "Z"


def test_missing_allure_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a source checkout (package.json beside the package): `npm ci` there; in an installed
    copy (site-packages has no package.json): a global install of the pinned release."""
    from harness.errors import ConfigError
    from harness.report import render

    monkeypatch.delenv("HARNESS_ALLURE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "package.json").write_text("{}")
    monkeypatch.setattr(render, "repo_root", lambda: checkout)
    with pytest.raises(ConfigError, match=f"run `npm ci` in {checkout}"):
        find_allure()
    monkeypatch.setattr(render, "repo_root", lambda: tmp_path / "site-packages")
    with pytest.raises(ConfigError, match=rf"npm install -g allure@{render.ALLURE_VERSION}"):
        find_allure()


# --- `harness report RUN_DIR` ----------------------------------------------------------------


def harness_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_report_renders_a_run_and_its_qualification_bundle(
    results_dir: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    rd = make_run_dir(reports, "20261121-1100-qual", purpose="qualification", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    scenario = "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guardx.unlocked"
    info = rd.read_info()
    info.scenarios = [scenario]
    rd.write_info(info)
    rd.journal.write_text(
        json.dumps(
            {
                "scenario": scenario,
                "dut": "tb-01",
                "outcome": "passed",
                "started": "2026-11-21T11:00:00Z",
                "duration_s": 30.0,
                "evidence_level": "documented",
                "conditions": {"kdp": "on", "session": "unlocked", "port": "external"},
            }
        )
        + "\n",
        encoding="utf-8",
    )

    r = harness_cli("report", str(rd.path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        str(rd.report_html),
        str(rd.path / "matrix.html"),
        str(rd.qualification),
    ]
    assert rd.report_html.stat().st_size > 100_000
    matrix = json.loads((rd.path / "matrix.json").read_text(encoding="utf-8"))
    assert [c["scenario"] for c in matrix["tables"][0]["rows"][0]["cells"]] == [scenario]
    assert len(history_file(reports, "smoke").read_text(encoding="utf-8").splitlines()) == 1
    data = json.loads((rd.qualification / "results.json").read_text(encoding="utf-8"))
    assert data["verdict"] == QUALIFIED
    assert verify_manifest(rd) == []
    manifest = json.loads((rd.qualification / "manifest.json").read_text(encoding="utf-8"))
    assert "report.html" in [f["path"] for f in manifest["files"]]

    r = harness_cli("report", "--no-history", str(rd.path))
    assert r.returncode == 0, r.stderr
    assert len(history_file(reports, "smoke").read_text(encoding="utf-8").splitlines()) == 1


def test_cli_report_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    r = harness_cli("report", str(tmp_path))
    assert r.returncode == 2
    assert "not a run directory" in r.stderr
    r = harness_cli("report", str(tmp_path / "absent"))
    assert r.returncode == 2
    assert "not a directory" in r.stderr


def test_cli_report_exit_3_when_rendering_fails(results_dir: Path, tmp_path: Path) -> None:
    rd = make_run_dir(tmp_path / "reports", "run", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    fake = tmp_path / "allure"
    fake.write_text("#!/bin/sh\necho 'renderer exploded' >&2\nexit 7\n", encoding="utf-8")
    fake.chmod(0o755)
    r = harness_cli("report", str(rd.path), env={"HARNESS_ALLURE": str(fake)})
    assert r.returncode == 3
    assert "renderer exploded" in r.stderr
    assert "exit code 7" in r.stderr


def test_a_relative_reports_folder_keeps_its_history(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness run --reports reports` (the default) passes a relative history path; the
    renderer runs in a temporary directory, where that path used to land and be deleted."""
    monkeypatch.setenv("HARNESS_ALLURE", str(find_allure()))
    monkeypatch.chdir(tmp_path)
    reports = Path("reports")
    rd = make_run_dir(reports, "20261121-1000-smoke", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    history = history_file(reports, "smoke")
    assert not history.is_absolute()
    for _ in range(2):
        render_report(rd, history=history, title="smoke 20261121-1000-smoke")
    kept = tmp_path / "reports" / ".history" / "smoke.jsonl"
    assert len(kept.read_text(encoding="utf-8").splitlines()) == 2


def test_without_allure_the_results_are_completed_all_the_same(
    results_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No Node.js on the controller: report.html cannot be rendered, but allure-results/ gets
    its categories.json and environment.properties, for a CI's own Allure to read."""
    from harness.errors import ConfigError
    from harness.report import render

    rd = make_run_dir(tmp_path, "run", purpose="manual", scenarios=[])
    shutil.copytree(results_dir, rd.allure_results, dirs_exist_ok=True)
    monkeypatch.delenv("HARNESS_ALLURE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(render, "repo_root", lambda: tmp_path / "site-packages")
    with pytest.raises(ConfigError, match="npm install -g allure"):
        render_report(rd, history=None, title="t")
    assert not rd.report_html.exists()
    categories = json.loads((rd.allure_results / "categories.json").read_text())
    assert [c["name"] for c in categories][:1] == [CATEGORIES[0]["name"]]
    assert (rd.allure_results / "environment.properties").is_file()
