"""Secrets never leave the places that need them: one real `harness run` of the smoke plan with
known secrets, then every byte it produced is searched for them.

The secrets:
- the per-run passwords the virtual lab generates for its DUT accounts (typed on the lock screen
  through the HID keyboard, sent over NTLM and SSH) and the lab's control token, read from the
  endpoints file while the run is going (the lab deletes it when it stops);
- the value of an environment variable that the lab file references (`password: env:VAR`),
  so a harness that dumped its environment or resolved a reference into a report is caught.

Searched: every file under the run directory (run.json, journal, junit, pytest.log, facts,
allure-results with its attachments and transcripts, report.html, qualification files), the
reports' history, the virtual lab's log, and the harness's stdout/stderr; each secret in plain
UTF-8, UTF-16LE, base64 (of both, at every alignment), URL-encoded and JSON-escaped forms.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.test_cli_run import LAB, ROOT, TIMEOUT_S

ENV_VAR = "DMALAB_E2E_SECRET_REF"
#: Characters that URL-, JSON- and base64-encode differently from the plain text; printable
#: ASCII only, since the lab unlocks tb-01 with the HID keyboard, which types nothing else (a
#: password it cannot type is refused before the run, tests/e2e/test_cli_hostile_inputs.py).
ENV_SECRET = 'E2e S3cret/+=&%"<>\\~!'


def base64_forms(data: bytes) -> list[bytes]:
    """The base64 text that `data` produces inside any larger base64 blob, at each of the three
    byte alignments: only the characters fully determined by `data`'s own bits."""
    forms = []
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + data)
        first = -(-8 * shift // 6)  # ceil
        last = (8 * (shift + len(data))) // 6  # exclusive
        forms.append(enc[first:last])
        forms.append(enc[first:last].replace(b"+", b"-").replace(b"/", b"_"))  # urlsafe
    return forms


def encoded_forms(secret: str) -> dict[str, bytes]:
    utf8, utf16 = secret.encode("utf-8"), secret.encode("utf-16-le")
    forms = {
        "plain": utf8,
        "utf-16le": utf16,
        "url": urllib.parse.quote(secret, safe="").encode(),
        "url+": urllib.parse.quote_plus(secret).encode(),
        "json": json.dumps(secret)[1:-1].encode(),
        "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1].encode(),
    }
    for i, b in enumerate(base64_forms(utf8)):
        forms[f"base64-utf8-{i}"] = b
    for i, b in enumerate(base64_forms(utf16)):
        forms[f"base64-utf16le-{i}"] = b
    return forms


def leaks(haystack: bytes, secrets: dict[str, str]) -> list[str]:
    found = []
    for name, secret in secrets.items():
        for form, needle in encoded_forms(secret).items():
            if needle and needle in haystack:
                found.append(f"{name} ({form})")
    return found


@dataclass
class SecretRun:
    returncode: int
    stdout: str
    stderr: str
    reports: Path
    run_dir: Path
    secrets: dict[str, str]
    endpoints_mode: int
    lab_logs: dict[str, bytes] = field(default_factory=dict)


def lab_with_env_reference(tmp_path: Path) -> Path:
    """The default virtual lab, tb-01 with `credentials: {password: env:ENV_VAR}`."""
    text = LAB.read_text().replace("packages/", f"{ROOT / 'lab_config' / 'packages'}/")
    anchor = "  tb-01:\n    address: 127.0.0.1\n"
    assert text.count(anchor) == 1
    text = text.replace(
        anchor,
        anchor + f"    credentials:\n      username: lab-runner\n      password: env:{ENV_VAR}\n",
    )
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory) -> SecretRun:
    tmp = tmp_path_factory.mktemp("secrets")
    lab = lab_with_env_reference(tmp)
    reports = tmp / "reports"
    tmpdir = tmp / "tmp"  # the launcher's private temp dir (endpoints file, lab log) lands here
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_VIRTUAL_PASSWORD"}
    env.update({ENV_VAR: ENV_SECRET, "TMPDIR": str(tmpdir)})
    argv = [sys.executable, "-m", "harness", "run", "testplans/smoke.yaml"]
    argv += ["--lab", str(lab), "--reports", str(reports)]
    out_file, err_file = tmp / "stdout", tmp / "stderr"
    secrets: dict[str, str] = {"env reference": ENV_SECRET}
    logs: dict[str, bytes] = {}
    endpoints_mode = -1
    with out_file.open("wb") as out, err_file.open("wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while proc.poll() is None:
                assert time.monotonic() < deadline, "harness run did not finish"
                for ep_file in tmpdir.glob("harness-vlab-*/endpoints.json"):
                    try:
                        data = json.loads(ep_file.read_text())
                        endpoints_mode = stat.S_IMODE(ep_file.stat().st_mode)
                    except (OSError, ValueError):
                        continue  # being written or already removed
                    for dut, d in data["duts"].items():
                        secrets[f"{dut} winrm password"] = d["winrm"]["password"]
                        secrets[f"{dut} ssh password"] = d["ssh"]["password"]
                    secrets["control token"] = data["control"]["token"]
                for log in tmpdir.glob("harness-vlab-*/*.log"):
                    with contextlib.suppress(OSError):
                        logs[str(log)] = log.read_bytes()
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return SecretRun(
        returncode=proc.returncode,
        stdout=out_file.read_text(errors="replace"),
        stderr=err_file.read_text(errors="replace"),
        reports=reports,
        run_dir=(reports / "latest").resolve(),
        secrets=secrets,
        endpoints_mode=endpoints_mode,
        lab_logs=logs,
    )


def test_the_run_passed_and_its_secrets_were_captured(secret_run: SecretRun) -> None:
    assert secret_run.returncode == 0, secret_run.stdout + secret_run.stderr
    names = set(secret_run.secrets)
    assert {"tb-01 winrm password", "m2-01 ssh password", "control token"} <= names, names
    assert all(len(s) >= 16 for s in secret_run.secrets.values())
    assert secret_run.lab_logs, "the virtual lab's log was read during the run"


def test_no_secret_in_any_file_of_the_run_directory_in_any_encoding(secret_run: SecretRun) -> None:
    files = [p for p in secret_run.reports.rglob("*") if p.is_file() and not p.is_symlink()]
    run_files = {
        p.relative_to(secret_run.run_dir).as_posix()
        for p in files
        if secret_run.run_dir in p.parents
    }
    # the search covers what a leak would hide in, not just an empty directory
    assert {
        "run.json",
        "journal.jsonl",
        "junit.xml",
        "pytest.log",
        "report.html",
        "virtual-lab.log",
    } <= run_files
    assert any(f.startswith("allure-results/") and "attachment" in f for f in run_files)
    found = {str(p): leaks(p.read_bytes(), secret_run.secrets) for p in files}
    assert {p: f for p, f in found.items() if f} == {}


def test_no_secret_on_the_terminal_or_in_the_lab_log(secret_run: SecretRun) -> None:
    terminal = (secret_run.stdout + secret_run.stderr).encode()
    assert leaks(terminal, secret_run.secrets) == []
    for name, text in secret_run.lab_logs.items():
        assert leaks(text, secret_run.secrets) == [], name


def test_secret_holding_files_are_private(secret_run: SecretRun) -> None:
    assert secret_run.endpoints_mode == 0o600
    mode = stat.S_IMODE(secret_run.run_dir.stat().st_mode)
    assert mode == 0o700, oct(mode)
    for name in ("allure-results", "facts", "progress"):
        assert stat.S_IMODE((secret_run.run_dir / name).stat().st_mode) == 0o700, name
    for name in ("run.json", "journal.jsonl", "report.html"):
        assert stat.S_IMODE((secret_run.run_dir / name).stat().st_mode) == 0o600, name


def test_the_search_would_find_a_leak() -> None:
    """The detector itself: each encoding of a secret embedded in other text is found."""
    secret = "Smoke-S3cret-7f2a!"
    for form, needle in encoded_forms(secret).items():
        blob = b"prefix " + needle + b" suffix"
        assert leaks(blob, {"s": secret}), form
    for shift in range(3):
        blob = base64.b64encode(b"x" * shift + b'{"password": "' + secret.encode() + b'"}')
        assert leaks(blob, {"s": secret}), shift
        blob16 = base64.b64encode(b"y" * shift + f"-p {secret}".encode("utf-16-le"))
        assert leaks(blob16, {"s": secret}), shift
