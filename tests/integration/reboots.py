"""Waiting, in tests, for a virtual DUT to come back after a crash or a reboot the test caused."""

from __future__ import annotations

from datetime import datetime

from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline
from harness.windows.host import WindowsHost
from harness.windows.polling import Backoff, pause
from harness.windows.results import HostFacts

FAST_POLL = Backoff(start_s=0.02, factor=1.3, cap_s=0.1)


def wait_back(host: WindowsHost, old_boot: datetime, deadline: Deadline) -> HostFacts:
    """Reconnect with backoff until the host answers with a boot later than `old_boot`."""
    delays = FAST_POLL.delays()
    while True:
        try:
            host.shell.reconnect(timeout_s=max(0.1, deadline.remaining()))
            facts = host.host_facts(deadline=deadline)
            if facts.last_boot_utc > old_boot:
                return facts
        except InfrastructureError:
            if deadline.expired:
                raise
        deadline.check()
        pause(deadline, next(delays), host.sleep)
