"""Keep the end-of-run teardown going through Ctrl-C and SIGTERM.

Once the run puts its DUTs back to their baselines (`DutPool.close`), stopping halfway is the
worst outcome: a DUT left in DMAGuard 1 or with the test driver installed, and no teardown
record. So while the teardown runs, SIGINT and SIGTERM are noted on stderr and otherwise
ignored; the teardown is bounded by its own deadlines, and only SIGKILL stops it (the DUTs are
then where it left them: `harness lab restore LAB` puts them back). The previous handlers
come back when the teardown ends. Signals can only be handled in the main thread; elsewhere
this does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_SHIELDED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def teardown_shield() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are noted (the list yielded) and do not interrupt."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, _frame: object) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        message = (
            f"\nharness: {name} during the end-of-run teardown: the DUTs are being put back to "
            "their baseline (bounded by its deadline); only SIGKILL stops it\n"
        )
        with contextlib.suppress(OSError):
            os.write(2, message.encode())

    previous = {sig: signal.signal(sig, note) for sig in _SHIELDED}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
