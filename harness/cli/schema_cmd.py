"""`harness schema lab|plan`: print the JSON Schema of lab or plan files.

    harness schema lab > lab.schema.json

The schema comes from the pydantic models; editors can use it for completion. It describes
the YAML as read by the harness (`on`/`off` are strings, DMAGuard values may be 0/1/2).
"""

from __future__ import annotations

from typing import Any

import typer

from harness.cli.common import print_json, usage_error
from harness.config.lab import Lab
from harness.config.plan import Plan

_MODELS: dict[str, type[Lab] | type[Plan]] = {"lab": Lab, "plan": Plan}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `kind` ('lab' or 'plan')."""
    schema = _MODELS[kind].model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_command(
    kind: str = typer.Argument(..., metavar="lab|plan", help="Which file kind."),
) -> None:
    """Print the JSON Schema of lab or plan files."""
    if kind not in _MODELS:
        raise usage_error(f"unknown schema {kind!r}: choose 'lab' or 'plan'")
    print_json(json_schema(kind))


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
