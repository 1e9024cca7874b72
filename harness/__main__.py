"""`python -m harness ...` runs the `harness` command (useful where the console script is not on PATH)."""

from __future__ import annotations

from harness.cli.main import main

main()
