"""A reports folder that stops taking writes mid-run (disk full, quota, read-only remount).

When the journal, an Allure result or attachment, a progress file or pytest's own output cannot
be written because the reports disk is full, the scenarios still to come could not be recorded
either. So the first such error is noted (`note`) and the run stops after the current scenario
(`session.shouldstop`), instead of crashing pytest (INTERNALERROR) before the end-of-run
teardown: the teardown still runs and puts every DUT back to its baseline; its record is
attempted, and printed to stderr when it cannot be written. pytest then exits with
`EXIT_REPORTS_DISK`, which `harness run` turns into exit 3 (infrastructure) with a message.

pytest's output goes to `pytest.log` in the run directory, on the same disk: its writes are
made tolerant (`TolerantStream`), so a full disk never turns a print into a crash.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Generator
from typing import Any, TextIO

import pytest

from harness.report.disk_errors import (
    EXIT_REPORTS_DISK,
    NOTICE_FD_ENV,
    disk_error,
    is_disk_error,
)

__all__ = ["EXIT_REPORTS_DISK", "ReportsDiskGuard", "is_disk_error", "make_output_tolerant", "note"]

_failure: list[str] = []  # the first failure of this process, as a message


def note(exc: BaseException, what: str) -> str:
    """Record a refused write (the first one is kept) and return its message."""
    err = disk_error(exc)
    assert err is not None, exc
    where = f" ({err.filename})" if err.filename else ""
    text = f"{what}: {os.strerror(err.errno or 0)}{where}"
    if not _failure:
        _failure.append(text)
        say(
            f"harness: the reports folder takes no more writes: {text}; stopping after this "
            "scenario, the DUTs go back to their baseline"
        )
    return text


def failure() -> str | None:
    """The first refused write of this process, if any."""
    return _failure[0] if _failure else None


_notice_fd: list[int] = []


def take_notice_fd() -> None:
    """Adopt the descriptor `harness run` passed (once, in the process it was passed to); the
    variable is removed so that xdist workers, which do not inherit the descriptor, never
    write to whatever file gets that number in them."""
    value = os.environ.pop(NOTICE_FD_ENV, "")
    if value.isdigit() and not _notice_fd:
        with contextlib.suppress(OSError):
            os.fstat(int(value))
            _notice_fd.append(int(value))


def say(line: str) -> None:
    """One line on stderr (pytest.log) and on the controller's stderr when it passed it; never
    raising (either may be refused: the full disk, a closed terminal)."""
    data = (line + "\n").encode("utf-8", "replace")
    for fd in (2, *_notice_fd):
        with contextlib.suppress(OSError):
            os.write(fd, data)


class TolerantStream:
    """A text stream whose writes and flushes drop what the disk refuses (noted once)."""

    def __init__(self, inner: TextIO, name: str) -> None:
        self._inner = inner
        self._name = name

    def write(self, text: str) -> int:
        try:
            return self._inner.write(text)
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            note(exc, f"pytest {self._name}")
            return len(text)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            note(exc, f"pytest {self._name}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def make_output_tolerant() -> None:
    """pytest's stdout and stderr (pytest.log under `harness run`) drop refused writes; the
    controller's stderr, when passed, is taken for `say`."""
    take_notice_fd()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TolerantStream):
            setattr(sys, name, TolerantStream(stream, name))


class ReportsDiskGuard:
    """Registered when pytest writes a run directory (`--dma-run-dir`)."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        try:
            result = yield
        except OSError as exc:  # a hook (Allure's listener, the journal) could not write
            if not is_disk_error(exc):
                raise
            note(exc, f"recording {item.nodeid}")
            result = True
        if failure() is not None:
            item.session.shouldstop = f"the reports folder takes no more writes: {failure()}"
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        if call.excinfo is not None and is_disk_error(call.excinfo.value):
            note(call.excinfo.value, f"{item.nodeid} ({call.when})")
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        try:
            yield
        except OSError as exc:  # junit.xml could not be written, say
            if not is_disk_error(exc):
                raise
            note(exc, "the end of the pytest session")
            # pluggy stops a hook at the first implementation that raises: pytest's own one,
            # which tears the session's fixtures down (the DUTs back to their baseline), may
            # not have run. Tearing down twice does nothing.
            session._setupstate.teardown_exact(None)
        if failure() is not None:
            session.exitstatus = EXIT_REPORTS_DISK
