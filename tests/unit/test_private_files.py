"""Files that may hold secrets are private: 0700 directories and 0600 files, whatever the umask.

Every test runs under umask 000, so a file created with plain `open()`/`mkdir()` would come out
0666/0777 and fail here: the tests prove the protection itself, not a friendly umask.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.endpoints import (
    ControlEndpoint,
    DutEndpoints,
    LabEndpoints,
    SshEndpointInfo,
    WinRmEndpoint,
)
from harness.outcomes import Outcome
from harness.private_files import append_private, open_private, private_dir, write_private
from harness.report.allure_files import atomic_write, write_categories
from harness.report.journal import Journal, JournalEntry
from harness.report.run_dir import RunDir, RunInfo

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_private_dir_is_0700_with_new_parents_and_fixes_an_existing_dir(tmp_path: Path) -> None:
    before = mode(tmp_path)
    d = private_dir(tmp_path / "a" / "b")
    assert mode(d) == 0o700 and mode(tmp_path / "a") == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    assert mode(loose) == 0o777
    private_dir(loose)
    assert mode(loose) == 0o700
    assert mode(tmp_path) == before  # an existing parent is left alone


def test_write_private_is_0600_atomic_and_replaces_a_loose_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    os.chmod(target, 0o666)
    write_private(target, '{"password": "p"}\n')
    assert mode(target) == 0o600
    assert target.read_text() == '{"password": "p"}\n'
    write_private(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes" and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left
    write_private(tmp_path / "new" / "dir" / "f", "x")
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "dir" / "f") == 0o600


def test_write_private_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_private(target, "old")

    class Boom(str):
        def encode(self, *a: object, **k: object) -> bytes:  # type: ignore[override]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_private(target, Boom("new"))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_append_private_and_open_private(tmp_path: Path) -> None:
    log = tmp_path / "j.jsonl"
    append_private(log, "a\n")
    append_private(log, b"b\n")
    assert log.read_text() == "a\nb\n" and mode(log) == 0o600
    os.chmod(log, 0o644)
    append_private(log, "c\n")
    assert mode(log) == 0o600  # an existing file is made private again

    with open_private(tmp_path / "pytest.log", "wb") as f:
        f.write(b"x")
    assert mode(tmp_path / "pytest.log") == 0o600
    with open_private(tmp_path / "t.txt", "a", encoding="utf-8") as f:
        f.write("y")
    assert (tmp_path / "t.txt").read_text() == "y" and mode(tmp_path / "t.txt") == 0o600
    with pytest.raises(ValueError, match="does not create"):
        open_private(tmp_path / "r", "rb")


def test_concurrent_write_private_never_tears(tmp_path: Path) -> None:
    target = tmp_path / "f"
    errors: list[BaseException] = []

    def writer(ch: str) -> None:
        try:
            for _ in range(50):
                write_private(target, ch * 10_000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c,)) for c in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = target.read_text()
    assert text in ("a" * 10_000, "b" * 10_000)


def _endpoints() -> LabEndpoints:
    return LabEndpoints(
        duts={
            "tb-01": DutEndpoints(
                winrm=WinRmEndpoint("http://h/wsman", "https://h/wsman", "ca.pem", "u", "pw1"),
                ssh=SshEndpointInfo("127.0.0.1", 22, "u", "pw2", "kh"),
                control_url="http://c",
            )
        },
        instruments={},
        control=ControlEndpoint("http://c", "token"),
    )


def test_virtual_lab_endpoints_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "lab" / "endpoints.json"
    _endpoints().write(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert LabEndpoints.read(path).duts["tb-01"].winrm.password == "pw1"
    os.chmod(path, 0o644)
    _endpoints().write(path)  # rewritten: private again
    assert mode(path) == 0o600


def test_run_directory_and_the_files_the_harness_writes_are_private(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "reports" / "20261121T100000Z-smoke")
    rd.create()
    for d in (rd.path, rd.allure_results, rd.facts, rd.progress):
        assert mode(d) == 0o700, d
    rd.write_info(
        RunInfo(
            run_id="r",
            plan="p.yaml",
            plan_name="p",
            purpose="manual",
            lab="l.yaml",
            lab_sha256="0" * 64,
            harness_version="0",
            started="2026-11-21T10:00:00Z",
        )
    )
    assert mode(rd.run_json) == 0o600
    Journal(rd.journal).append(
        JournalEntry("tb-01.x", "tb-01", Outcome.PASSED, "2026-11-21T10:00:00Z", 1.0, "documented")
    )
    assert mode(rd.journal) == 0o600
    assert mode(rd.write_private("selected.txt", "a\n")) == 0o600
    assert mode(write_categories(rd.allure_results)) == 0o600
    atomic_write(rd.path / "qualification" / "results.json", "{}")
    assert mode(rd.path / "qualification" / "results.json") == 0o600
    assert mode(rd.path / "qualification") == 0o700
