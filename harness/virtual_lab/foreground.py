"""Run a virtual lab in the foreground until SIGINT or SIGTERM: shared by `harness lab up` and
`python -m harness.virtual_lab`.

It starts the `VirtualLabRuntime`, prints every endpoint (never a password or the control
token), writes the endpoints file (0600, atomically) if asked, tells a waiting parent through
`ready_fd` (one line, then the descriptor is closed; the launcher waits on it instead of polling
for the file), and on a signal stops everything, removes the endpoints file and returns 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from harness.config.lab import Lab
from harness.virtual_lab.runtime import VirtualLabRuntime

log = logging.getLogger(__name__)
PASSWORD_ENV = "HARNESS_VIRTUAL_PASSWORD"
EXIT_OK = 0
EXIT_INFRASTRUCTURE = 3


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _notify_ready(ready_fd: int | None) -> None:
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(ready_fd, b"ready\n")
    with contextlib.suppress(OSError):
        os.close(ready_fd)


def serve(
    lab: Lab,
    *,
    endpoints_file: Path | None = None,
    workdir: Path | None = None,
    password: str | None = None,
    ready_fd: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the lab until SIGINT/SIGTERM; 0 after a clean stop, 3 if it could not start."""
    stop = threading.Event()
    own_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="harness-vlab-")) if workdir is None else Path(workdir)
    try:
        with _stop_on_signals(stop):
            try:
                runtime = VirtualLabRuntime(lab, workdir=work, password=password).start()
            except Exception as exc:
                log.exception("the virtual lab did not start")
                echo(f"error: the virtual lab did not start: {type(exc).__name__}: {exc}")
                return EXIT_INFRASTRUCTURE
            try:
                endpoints = runtime.endpoints()
                if endpoints_file is not None:
                    endpoints.write(endpoints_file)
                for line in endpoints.describe():
                    echo(line)
                if endpoints_file is not None:
                    echo(f"endpoints file: {endpoints_file}")
                echo("virtual lab ready; Ctrl-C or SIGTERM stops it")
                _notify_ready(ready_fd)
                ready_fd = None
                stop.wait()  # until a signal: the lab's whole job is to run until told to stop
                echo("stopping the virtual lab")
            finally:
                runtime.stop()
                if endpoints_file is not None:
                    with contextlib.suppress(FileNotFoundError):
                        Path(endpoints_file).unlink()
    finally:
        if ready_fd is not None:  # never became ready: EOF tells the parent
            with contextlib.suppress(OSError):
                os.close(ready_fd)
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)
    return EXIT_OK
