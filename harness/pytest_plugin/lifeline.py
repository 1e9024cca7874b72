"""Stop pytest like after Ctrl-C when the `harness run` controller that started it dies.

`harness run` starts pytest in its own session (so a terminal's Ctrl-C reaches the controller
only) with `-p harness.pytest_plugin.lifeline --lifeline-fd N`: `N` is the read end of a pipe
whose write end only the controller holds. Nothing is ever written to it, so a read returns EOF
exactly when the controller is gone, however it ended (kill -9 included). A daemon thread of
the pytest controller process waits for that EOF, then does what the harness controller does
after Ctrl-C: SIGINT to pytest's process group (pytest and its xdist workers; the scenarios tear
down), SIGTERM after `--lifeline-grace` seconds, SIGKILL 30 seconds later. The thread ends with
the process; a pytest that finishes first is never signalled.

POSIX only, like the process groups `harness run` relies on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

import pytest

#: Seconds between SIGTERM and SIGKILL once the grace after SIGINT is over.
TERM_GRACE_S = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dma-lab-harness")
    group.addoption(
        "--lifeline-fd",
        type=int,
        default=None,
        help="pipe from harness run: at EOF (the controller died) stop like after Ctrl-C",
    )
    group.addoption(
        "--lifeline-grace",
        type=float,
        default=300.0,
        help="seconds the scenarios get to tear down after the controller died",
    )


def restore_default_signals() -> None:
    """Undo an inherited SIG_IGN for SIGINT and SIGTERM (cron, CI agents and `nohup ... &`
    start the run with SIGINT ignored, and every child inherits that): the lifeline's SIGINT
    must reach pytest as KeyboardInterrupt, so the scenario tears down and pytest stops."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_configure(config: pytest.Config) -> None:
    if os.name == "posix" and threading.current_thread() is threading.main_thread():
        restore_default_signals()  # in the pytest controller and in every xdist worker
    fd = config.getoption("--lifeline-fd", None)
    if fd is None or hasattr(config, "workerinput") or os.name != "posix":
        return
    grace = float(config.getoption("--lifeline-grace", 300.0))
    threading.Thread(target=watch, args=(fd, grace), name="harness-lifeline", daemon=True).start()


def watch(fd: int, grace_s: float) -> None:
    """Block until `fd` reads EOF, then stop this process group (see the module doc)."""
    try:
        while os.read(fd, 512):
            pass  # nobody writes; tolerate it
    except OSError:
        pass  # a bad descriptor counts as a dead parent
    sys.stderr.write("harness: the harness run controller is gone; stopping like after Ctrl-C\n")
    stop_group(grace_s)


def stop_group(grace_s: float) -> None:
    """SIGINT, then SIGTERM after `grace_s`, then SIGKILL: each ends the waits of this thread
    early only by ending the process, so the deadlines are the only waits."""
    done = threading.Event()  # never set: Event.wait is the deadline
    for sig, grace in (
        (signal.SIGINT, grace_s),
        (signal.SIGTERM, TERM_GRACE_S),
        (signal.SIGKILL, 0.0),
    ):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgrp(), sig)
        done.wait(grace)
