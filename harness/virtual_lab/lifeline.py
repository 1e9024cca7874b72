"""Stop the virtual lab when every process that holds its lifeline is gone.

The launcher passes `--lifeline-fd N`: the read end of a pipe whose write end the launching
process keeps (and, for `harness run`, the pytest child it starts too). Nothing is written to
it, so a read returns EOF once all of them have ended, however they ended (kill -9 included):
the lab then stops itself as after SIGTERM, and does not live on as an orphan.
"""

from __future__ import annotations

import os
import signal
import threading


def watch_lifeline(fd: int) -> threading.Thread:
    """Start a daemon thread that sends this process SIGTERM at EOF on `fd`."""

    def run() -> None:
        try:
            while os.read(fd, 512):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=run, name="virtual-lab-lifeline", daemon=True)
    thread.start()
    return thread
