"""Lab files for integration tests that need the default virtual lab with an edit or two."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def virtual_lab_text() -> str:
    """lab_config/virtual.yaml with its package paths made absolute, so a copy elsewhere loads."""
    text = (ROOT / "lab_config" / "virtual.yaml").read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    return text.replace("[packages/", f"[{base}/packages/")
