"""Secret references: parsing, resolution on demand, never revealing values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness.config.secrets import SecretError, SecretRef
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "scheme", "target"),
    [
        ("env:WINRM_PASSWORD", "env", "WINRM_PASSWORD"),
        ("file:secrets/pw.txt", "file", "secrets/pw.txt"),
        ("keyring:dmalab-winrm/LAB\\runner", "keyring", "dmalab-winrm/LAB\\runner"),
    ],
)
def test_parse(text: str, scheme: str, target: str) -> None:
    ref = SecretRef.parse(text)
    assert (ref.scheme, ref.target) == (scheme, target)
    assert str(ref) == text
    assert repr(ref) == f"SecretRef({text!r})"


@pytest.mark.parametrize(
    "text", ["hunter2", "env:1X", "env:", "file:", "keyring:svc", "vault:x", 42, True]
)
def test_literals_are_refused_without_echo(text: object) -> None:
    with pytest.raises(SecretError) as info:
        SecretRef.parse(text)
    assert "env:VARIABLE" in str(info.value)
    if text not in ("env:", "file:"):
        assert str(text) not in str(info.value)


def test_resolve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef.parse("env:HARNESS_TEST_PW")
    monkeypatch.delenv("HARNESS_TEST_PW", raising=False)
    with pytest.raises(ConfigError, match="HARNESS_TEST_PW is not set"):
        ref.resolve()
    monkeypatch.setenv("HARNESS_TEST_PW", "s3cret-value")
    assert ref.resolve() == "s3cret-value"
    assert "s3cret-value" not in repr(ref) + str(ref)


def test_resolve_file_strips_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("line-secret\n")
    ref = SecretRef.parse("file:pw")
    assert ref.resolve(base_dir=tmp_path) == "line-secret"
    assert SecretRef.parse(f"file:{tmp_path / 'pw'}").resolve() == "line-secret"
    with pytest.raises(ConfigError, match="cannot read"):
        SecretRef.parse("file:missing").resolve(base_dir=tmp_path)


def test_keyring_missing_is_a_clear_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring -> ImportError
    with pytest.raises(ConfigError, match="'keyring' package is not installed") as err:
        SecretRef.parse("keyring:svc/user").resolve()
    assert "dma-lab-harness[keyring]" in str(err.value)


def test_pydantic_field_and_schema() -> None:
    class M(BaseModel):
        password: SecretRef

    m = M.model_validate({"password": "env:PW"})
    assert m.password == SecretRef("env", "PW")
    assert m.model_dump(mode="json") == {"password": "env:PW"}
    assert M.model_json_schema()["properties"]["password"]["type"] == "string"
    with pytest.raises(ValueError) as info:
        M.model_validate({"password": "plaintext-pw"})
    assert "plaintext-pw" not in str(info.value).split("input_value")[0]


def test_immutable() -> None:
    ref = SecretRef.parse("env:PW")
    with pytest.raises(AttributeError):
        ref.target = "x"  # type: ignore[misc]
