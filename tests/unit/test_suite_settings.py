"""The suite's own settings that keep it honest on a shared, noisy machine (tests/conftest.py)."""

from __future__ import annotations

from hypothesis import settings


def test_property_tests_have_no_per_example_deadline() -> None:
    # a deadline measures the machine's load, not the code (a 20 ms example took 372 ms once)
    assert settings.default.deadline is None
