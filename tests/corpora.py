"""Conformance corpora nobody here wrote (Microsoft's sample INF files, WS-Management traffic
recorded from real Windows servers), found through one environment variable:

    DMA_HARNESS_CORPORA=/path/to/data python -m pytest     # holds inf-samples/, wsman-recordings/

`.ci/run` sets it when the corpora are beside the clone. Without it, the tests that need a corpus
report "not run: corpus not given" (the one skip the suite allows).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "DMA_HARNESS_CORPORA"


def corpus_dir(name: str) -> Path | None:
    """The corpus folder `name`, or None when the corpora were not given."""
    root = os.environ.get(ENV)
    if not root:
        return None
    path = Path(root) / name
    if not path.is_dir():
        raise AssertionError(f"{ENV}={root} has no {name}/ folder")
    return path


def corpus(name: str) -> Path:
    """The corpus folder `name`; the calling test reports itself not run without it."""
    path = corpus_dir(name)
    if path is None:
        pytest.skip(f"not run: corpus not given (set {ENV} to a folder holding {name}/)")
    return path
