"""Report steps, declared where the methods are defined: `@step` marks a method (or a function
whose first parameter is the object) as a step, and the object reports its steps to a `StepSink`
once someone gives it one (the pytest plugin gives Allure's). Without a sink a step is a plain
call. Signatures and return types stay as written, for readers and for mypy. The calls a step
makes on its own object (the polls of `wait_for_device`) are part of it, not steps of their own.

>>> class Switch(Stepping):
...     @step("channel")
...     def connect(self, channel: int, *, timeout_s: float = 5.0) -> None: ...
>>> sw = Switch()
>>> sw.report_steps(PrintSink(), "switch-1")
>>> sw.connect(3)
step: switch-1: connect(3)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

__all__ = ["PrintSink", "StepSink", "Stepping", "step"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")

_MAX_ARG = 60


class StepSink(Protocol):
    """Where steps go: each is a context around the call, titled `label: name(args)`."""

    def step(self, title: str) -> AbstractContextManager[None]: ...


class PrintSink:
    """A sink that prints each step's title (examples, debugging)."""

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        print(f"step: {title}")
        yield


class Stepping:
    """Mixin of the objects whose `@step` methods report to a sink: a DUT's `WindowsHost`, a
    switch, a keyboard, a session control."""

    step_sink: StepSink | None = None
    step_label: str = ""
    _step_active: bool = False  # a step of this object is running (its inner calls are part)

    def report_steps(self, sink: StepSink | None, label: str) -> None:
        """Report every `@step` call from now on to `sink`, titled `label: name(args)`."""
        self.step_sink = sink
        self.step_label = label


def _short(value: Any) -> str:
    if isinstance(value, Path):
        return value.name
    text = repr(value)
    return text if len(text) <= _MAX_ARG else text[: _MAX_ARG - 3] + "..."


def step(
    *shown: str,
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Mark a method (or a function of a `Stepping` first argument) as a step; `shown` names the
    parameters its title shows (never a secret, a deadline or a callback)."""

    def decorate(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        signature = inspect.signature(fn)
        unknown = [n for n in shown if n not in signature.parameters]
        if unknown:
            raise TypeError(f"@step on {fn.__qualname__}: no parameter {', '.join(unknown)}")
        keyword_only = {
            n: signature.parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in shown
        }

        @functools.wraps(fn)
        def call(owner: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            sink = getattr(owner, "step_sink", None)
            if sink is None or getattr(owner, "_step_active", False):
                # no sink, or inside another step of the same object: part of that step
                return fn(owner, *args, **kwargs)
            bound = signature.bind_partial(owner, *args, **kwargs).arguments
            parts = [
                f"{n}={_short(bound[n])}" if keyword_only[n] else _short(bound[n])
                for n in shown
                if n in bound
            ]
            title = f"{getattr(owner, 'step_label', '')}: {fn.__name__}({', '.join(parts)})"
            with sink.step(title):
                owner._step_active = True  # type: ignore[attr-defined]
                try:
                    return fn(owner, *args, **kwargs)
                finally:
                    owner._step_active = False  # type: ignore[attr-defined]

        return call

    return decorate
