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
    "harness.cli.report_cmd",
    "harness.cli.init_cmd",
    "harness.cli.atlas_cmd",
    "harness.cli.coordinator_cmd",
]


def register(app: typer.Typer) -> None:
    for name in _MODULES:
        importlib.import_module(name).register(app)
