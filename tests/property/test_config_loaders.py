"""Property: the YAML loader, the lab loader and the plan loader turn any hostile input into a
ConfigError that names the file and (for input that has lines) a line; never another exception.
A literal value under a secret-named key is refused naming file, line and key, never echoed."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.config.yaml_loader import load_yaml, load_yaml_text
from harness.errors import ConfigError
from tests.property.hostile import ALIAS_BOMB, HOSTILE_SCALARS, PROPERTY, ROOT, mutated_yaml

LABS = {
    "virtual": (ROOT / "lab_config" / "virtual.yaml").read_text(encoding="utf-8"),
    "example": (ROOT / "lab_config" / "example_lab.yaml").read_text(encoding="utf-8"),
}
PLANS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "testplans").glob("*.yaml"))}
PACKAGES = (ROOT / "lab_config" / "packages").as_posix()


def _has_lines(text: str) -> bool:
    return bool(text.strip())


def _check(exc: ConfigError, path: str, text: str) -> None:
    assert isinstance(exc, ConfigError)
    assert exc.path is not None, str(exc)
    assert "Traceback" not in str(exc)
    if exc.path == path and _has_lines(text):
        assert exc.line is not None and exc.line >= 1, f"no line: {exc}"
        assert str(exc).startswith(f"{path}:{exc.line}: ")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


# --- the YAML loader ---------------------------------------------------------------------------


@PROPERTY
@given(st.text(max_size=400))
@example(ALIAS_BOMB)
@example("a: " + "[" * 5000 + "]" * 5000)
@example("a: " + "{b: " * 3000 + "1" + "}" * 3000)
@example("a: &a [*a]")
@example("a: 1\na: 2")
@example("\ta: 1")
@example("a: b: c")
@example("? [a, b]\n: c")
@example("- a\n- b")
@example("a: !!python/object/apply:os.system [echo hi]")
@example("%TAG ! tag:x\n--- !x\na: 1")
@example("a: 1\n---\nb: 2")
@example("a: '\ud800'")
@example("a: b\nc: '\x85\x07'")  # a special character: the line is named (was: none)
def test_load_yaml_text(text: str) -> None:
    try:
        doc = load_yaml_text(text, "x.yaml")
    except ConfigError as exc:
        _check(exc, "x.yaml", text)
        return
    assert isinstance(doc.data, dict)


@PROPERTY
@given(st.binary(max_size=400))
@example(b"\xff\xfea\x00:\x00 \x001\x00")  # UTF-16: not UTF-8
@example(b"\xef\xbb\xbfa: 1")
@example(b"a: \x00")
@example(b"a: \x85\xe2\x80\xa8")
def test_load_yaml_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "raw.yaml"
    path.write_bytes(raw)
    try:
        load_yaml(path)
    except ConfigError as exc:
        assert exc.path == str(path)


# --- the lab and plan loaders -------------------------------------------------------------------


@PROPERTY
@given(st.sampled_from(sorted(LABS)).flatmap(lambda k: mutated_yaml(LABS[k])))
def test_mutated_labs(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, "lab.yaml", text.replace("path: packages/", f"path: {PACKAGES}/"))
    try:
        load_lab(path, check_files=False)
    except ConfigError as exc:
        _check(exc, str(path), text)


@PROPERTY
@given(st.sampled_from(sorted(PLANS)).flatmap(lambda k: mutated_yaml(PLANS[k])))
def test_mutated_plans(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, "plan.yaml", text)
    try:
        load_plan(path)
    except ConfigError as exc:
        _check(exc, str(path), text)


_SECRET_KEYS = st.sampled_from(
    ["password", "Password", "winrm_password", "passphrase", "client_secret", "token", "api_key"]
)
_LITERALS = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=6, max_size=30
    ).filter(lambda s: s.strip() == s and not s.startswith(("env:", "file:", "keyring:"))),
    st.integers(100_000, 10**30).map(str),
)


@PROPERTY
@given(
    key=_SECRET_KEYS,
    value=_LITERALS,
    where=st.sampled_from(["credentials", "device", "top"]),
)
@example(key="password", value="hunter2hunter2", where="credentials")
def test_a_literal_secret_is_refused_naming_file_line_and_key(
    tmp_path: Path, key: str, value: str, where: str
) -> None:
    text = LABS["example"]
    quoted = "'" + value.replace("'", "''") + "'"
    if where == "credentials":
        key = "password"
        text = text.replace("password: env:DMALAB_WINRM_PASSWORD", f"password: {quoted}")
        anchor = "password: " + quoted
    elif where == "device":
        text = text.replace(
            "      volume_label: DMALAB-TB\n",
            f"      volume_label: DMALAB-TB\n      {key}: {quoted}\n",
        )
        anchor = f"{key}: {quoted}"
    else:
        text = f"{key}: {quoted}\n" + text
        anchor = f"{key}: {quoted}"
    path = _write(tmp_path, "lab.yaml", text)
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ln.strip() == anchor)) + 1
    try:
        load_lab(path, check_files=False)
    except ConfigError as exc:
        msg = str(exc)
        assert exc.path == str(path) and exc.line == line, msg
        assert exc.key is not None and exc.key.split(".")[-1] == key, msg
        assert "literal secret" in msg and "env:" in msg
        assert value not in msg
        return
    raise AssertionError("a literal secret was accepted")


@PROPERTY
@given(st.sampled_from(HOSTILE_SCALARS), st.sampled_from(["duts", "instruments", "devices"]))
def test_wrong_types_at_the_top_of_a_lab(tmp_path: Path, scalar: str, key: str) -> None:
    text = re.sub(
        rf"(?m)^{key}:\n", lambda _: f"{key}: {scalar}\n_was_{key}:\n", LABS["virtual"], count=1
    )
    path = _write(tmp_path, "lab.yaml", text)
    try:
        load_lab(path, check_files=False)
    except ConfigError as exc:
        _check(exc, str(path), text)
