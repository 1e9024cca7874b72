"""The `harness` command line (typer): one module per command group."""
