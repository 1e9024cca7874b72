"""Property: whatever bytes an INF file holds, the reader returns an InfInfo or raises InfError
naming the file (and the line, when the problem is on one); never any other exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.domain.inf import parse_inf, read_inf, source_disks_files
from harness.domain.inf_lexer import InfError
from tests.corpora import corpus, corpus_dir
from tests.property.hostile import PROPERTY, ROOT

_CORPUS = corpus_dir("inf-samples")
#: Microsoft's sample INFs when the corpus is given, and always the lab's own packages.
SAMPLES = sorted(_CORPUS.rglob("*.inf") if _CORPUS else []) + sorted(
    (ROOT / "lab_config" / "packages").glob("*.inf")
)
NAME = "pkg/driver.inf"
#: Problems about the whole file, not one line of it.
WHOLE_FILE = ("not an INF file", "not valid UTF-16", "not valid UTF-8", "empty")

HOSTILE_INF_LINES = [
    "[",
    "[Version",
    "[]",
    "[Strings]",
    "[Version]",
    'Signature = "$Windows NT$',
    "%undefined% = x",
    "%Mfg% = Models, NTamd64, NTamd64.10.0...99999, NTx86",
    "%Desc% = Inst, PCI\\VEN_8086&DEV_1234",
    "AddService = drv, 0x2, Svc",
    "AddService = ,,,,,,",
    "HKR,,DmaRemappingCompatible,0x00010001,",
    "HKR,,DmaRemappingCompatible,0x00010001,99999999999999999999999",
    "HKR,,DmaRemappingCompatible,0x00010001,0xZZ",
    "HKR,Parameters,DmaRemappingCompatible,0x00010001,-1",
    "HKR,DMA Management,RemappingSupported,0x00010001,1",
    "AddReg = Svc.Reg, Svc.Reg, Missing.Reg",
    "Include = machine.inf",
    "Needs = Inst",
    "CopyFiles = @drv.sys",
    "x = \\",
    "\\",
    "; comment \\",
    '"unterminated',
    "a = %%%",
    "a = %13%\\x.sys",
    "\t\t key \t=\t value \t",
    "\x00\x01\x02",
    "\ufeff[Version]",
    "é€𝄞\u202e = 1",
    "a" * 5000,
]


def _check(exc: InfError, data: bytes) -> None:
    assert isinstance(exc, InfError)
    assert exc.path == NAME and str(exc).startswith(NAME + ":")
    if exc.line is None:
        assert exc.message.startswith(WHOLE_FILE), f"no line for: {exc.message}"
    else:
        assert exc.line >= 1
        assert f"{NAME}:{exc.line}: " in str(exc)


def _read(data: bytes) -> None:
    try:
        info = parse_inf(data, NAME)
    except InfError as exc:
        _check(exc, data)
        return
    # a readable file gives typed, consistent results
    for model in info.models:
        for service in model.services:
            assert service.dma_remapping_compatible in (None, 0, 1, 2, 3) or isinstance(
                service.dma_remapping_compatible, int
            )
    try:
        files = source_disks_files(data, NAME)
    except InfError as exc:
        _check(exc, data)
        return
    assert all(isinstance(f, str) for f in files)


@PROPERTY
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\xff\xfe")
@example(b"\xfe\xff\x00[")
@example(b"\xef\xbb\xbf")
@example(b"\xff\xfe[\x00V\x00")  # truncated UTF-16: an odd byte count
@example(b"[Version]\n\x00")
def test_random_bytes(data: bytes) -> None:
    _read(data)


@PROPERTY
@given(st.text(max_size=800), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le"]))
def test_random_text_in_every_encoding(text: str, encoding: str) -> None:
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:  # lone surrogates
        data = text.encode(encoding, "surrogatepass")
    _read(data)


@st.composite
def mutated_inf(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(SAMPLES))
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8", "replace")
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "truncate"]))
        hostile = draw(st.one_of(st.sampled_from(HOSTILE_INF_LINES), st.text(max_size=40)))
        if not lines:
            lines = [hostile]
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "insert":
            lines.insert(i, hostile)
        elif kind == "replace":
            lines[i] = hostile
        else:
            lines = lines[:i]
    out = "\r\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"]))
    data = out.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    if draw(st.integers(0, 9)) == 0:  # a flipped byte
        j = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:j] + bytes([draw(st.integers(0, 255))]) + data[j + 1 :]
    return data


@PROPERTY
@given(mutated_inf())
def test_mutated_real_inf_files(data: bytes) -> None:
    _read(data)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_or_is_a_typed_error(path: Path) -> None:
    try:
        read_inf(path)
    except InfError as exc:
        assert exc.path == str(path)


def test_the_sample_corpus_is_among_the_inputs() -> None:
    """With the corpus given, the properties above run over Microsoft's samples too."""
    folder = corpus("inf-samples")
    assert any(p.is_relative_to(folder) for p in SAMPLES)
