"""The list of command modules; each exposes `register(app)`."""

from __future__ import annotations

import importlib

import typer

_MODULES = [
    "harness.cli.expect_cmd",
    "harness.cli.inf_cmd",
    "harness.cli.lab_cmd",
    "harness.cli.plan_cmd",
    "harness.cli.schema_cmd",
    "harness.cli.run_cmd",
]


def register(app: typer.Typer) -> None:
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet
                continue
            raise
        module.register(app)
