"""The lifecycle every virtual-lab server shares: `start()` returns the server, `stop()` is
idempotent and bounded in time, and a `with` block does both.

    with ScpiSwitchServer(channel_count=4) as switch:
        ...  # switch.port is listening on 127.0.0.1
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

_S = TypeVar("_S", bound="Service")


class Service:
    """Base of the lab's servers; subclasses implement `start` and `stop`."""

    def start(self: _S) -> _S:
        raise NotImplementedError

    def stop(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
