"""Timed events of a simulated machine (reboot phases, a lock that takes effect a moment later).

One daemon thread runs due callbacks in order; `cancel_all()` forgets pending events (power
loss) and `close()` stops the thread with a deadline. Waiting is a condition wait until the next
event is due, never a fixed sleep.

>>> s = Scheduler("demo"); fired = []
>>> _ = s.after(0.0, lambda: fired.append(1)); s.drain(1.0); fired
[1]
>>> s.close()
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"sched-{name}", daemon=True)
        self._thread.start()

    def after(self, delay_s: float, fn: Callable[[], None]) -> int:
        with self._cond:
            seq = next(self._seq)
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay_s), seq, fn))
            self._cond.notify_all()
            return seq

    def cancel_all(self) -> None:
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def drain(self, timeout_s: float) -> bool:
        """Wait until no event is pending or running; False on timeout (for tests and shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, fn = heapq.heappop(self._heap)
                self._busy = True
            try:
                fn()
            except Exception:  # a faulty event must not kill the machine's clock
                log.exception("scheduled event failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
