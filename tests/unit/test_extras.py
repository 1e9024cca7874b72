"""Optional dependencies: the extras in pyproject.toml, and a missing one is an error naming the
extra to install (serial instruments here; keyring secrets in test_secrets.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.config.lab import load_lab
from harness.errors import ConfigError
from harness.extras import available, install_hint
from harness.instruments.base import VisaSession
from harness.shipped import packaged_lab_dir

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_declares_the_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert [r.split(">")[0] for r in extras["serial"]] == ["pyserial"]
    assert [r.split(">")[0] for r in extras["keyring"]] == ["keyring"]
    assert project["name"] == "dma-lab-harness"
    assert install_hint("serial") == "pip install 'dma-lab-harness[serial]'"


@pytest.fixture
def no_pyserial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "serial", None)  # import serial -> ImportError
    assert not available("serial")


@pytest.fixture
def real_lab(tmp_path: Path) -> Path:
    """example_lab.yaml (two serial instruments) with the files it names."""
    shutil.copytree(packaged_lab_dir(), tmp_path / "lab")
    for rel in ("certs/lab-ca.pem", "ssh/known_hosts", "ssh/dma-runner_ed25519"):
        (tmp_path / "lab" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lab" / rel).write_text("placeholder\n", encoding="utf-8")
    return tmp_path / "lab" / "example_lab.yaml"


def test_serial_lab_without_pyserial_names_the_extra(real_lab: Path, no_pyserial: None) -> None:
    with pytest.raises(ConfigError) as err:
        load_lab(real_lab)
    text = str(err.value)
    assert text.startswith(f"{real_lab}:")
    assert "resource: a serial-port instrument (ASRL resource) needs the 'pyserial'" in text
    assert "pip install 'dma-lab-harness[serial]'" in text
    load_lab(real_lab, check_files=False)  # the file itself is valid


def test_serial_lab_with_pyserial_loads(real_lab: Path) -> None:
    if not available("serial"):
        pytest.skip("pyserial not installed")
    load_lab(real_lab)


def test_opening_a_serial_instrument_without_pyserial(no_pyserial: None) -> None:
    session = VisaSession("mcci", "ASRL/dev/ttyACM0::INSTR", timeout_s=1.0)
    with pytest.raises(ConfigError, match=r"dma-lab-harness\[serial\]") as err:
        session.open()
    assert "mcci (ASRL/dev/ttyACM0::INSTR)" in str(err.value)
