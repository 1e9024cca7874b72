"""Static checks of the Windows operation scripts (`harness/windows/ops/*.ps1`).

No Windows PowerShell here, so: tree-sitter-powershell in baseline mode (a script may not get
more error nodes than `ps_parse_baseline.json` records), the header and prologue of
docs/windows-operations.md, one script per documented operation, and a lint for constructs that
are PowerShell 7 only or that break delivery. The authoritative syntax check is the `ps_parse`
operation (PowerShell 5.1's own parser) run on a DUT.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPS_DIR = ROOT / "harness" / "windows" / "ops"
CONTRACT = ROOT / "docs" / "windows-operations.md"
SCRIPTS = sorted(OPS_DIR.glob("*.ps1"))
PROLOGUE = [
    "param([Parameter(Mandatory = $true)][string]$ParamsBase64)",
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64))"
    " | ConvertFrom-Json",
]


def _baseline_tool() -> ModuleType:
    pytest.importorskip("tree_sitter")
    pytest.importorskip("tree_sitter_powershell")
    path = ROOT / "tools" / "update_ps_baseline.py"
    spec = importlib.util.spec_from_file_location("update_ps_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, code) with comment lines, here-string bodies and '...'/"..." literals removed."""
    out: list[tuple[int, str]] = []
    in_here = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if in_here:
            in_here = not stripped.startswith(("'@", '"@'))
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith(("@'", '@"')):
            in_here = True
        code = re.sub(r"'(?:[^']|'')*'", "''", line)
        code = re.sub(r'"(?:[^"`]|`.)*"', '""', code)
        out.append((number, code))
    return out


def _header(text: str) -> list[str]:
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return lines[:end]


def _contract_operations() -> set[str]:
    """Backticked names in the first column of the contract's operation tables."""
    return set(re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|", _text(CONTRACT), re.M))


def test_one_script_per_documented_operation() -> None:
    documented = _contract_operations()
    assert len(documented) >= 20, f"could not read the operation tables of {CONTRACT}"
    shipped = {p.stem for p in SCRIPTS}
    assert shipped == documented, (
        f"missing scripts: {sorted(documented - shipped)}; "
        f"undocumented scripts: {sorted(shipped - documented)}"
    )


def test_tree_sitter_errors_do_not_exceed_baseline() -> None:
    tool = _baseline_tool()
    baseline = tool.load_baseline()
    current = tool.current_counts()
    hint = f"if the new count is right (checked by hand), run `{tool.UPDATE_COMMAND}`"
    problems = [f"{n}: no baseline entry" for n in sorted(set(current) - set(baseline))]
    problems += [
        f"{n}: in the baseline but not shipped" for n in sorted(set(baseline) - set(current))
    ]
    problems += [
        f"{n}: {current[n]} tree-sitter error nodes, baseline {baseline[n]}"
        for n in sorted(set(current) & set(baseline))
        if current[n] > baseline[n]
    ]
    assert not problems, "; ".join(problems) + f" ({hint})"


def test_checker_detects_a_deleted_closing_brace() -> None:
    tool = _baseline_tool()
    clean = [p for p in SCRIPTS if tool.error_count(p.read_bytes()) == 0]
    assert clean, "no script parses clean, so the checker cannot be shown to work"
    detected = []
    for path in clean:
        source = path.read_bytes()
        cut = source.rindex(b"}")
        if tool.error_count(source[:cut] + source[cut + 1 :]) > 0:
            detected.append(path.name)
    assert detected, "deleting the last '}' went unnoticed in every clean script"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_header_and_prologue(path: Path) -> None:
    text = _text(path)
    lines = text.splitlines()
    assert lines[0] == f"# Operation: {path.stem}"
    header = _header(text)
    # A "# Facility:" entry runs until the next "# Key:" line; it must cite its documentation.
    entries = re.split(r"\n(?=# [A-Z][a-z]+:)", "\n".join(header))
    facilities = [e for e in entries if e.startswith("# Facility:")]
    assert facilities, "no '# Facility:' line"
    assert any("https://" in e for e in facilities), "no '# Facility:' entry with an https:// URL"
    assert any(e.startswith("# Parameters:") for e in entries), "no '# Parameters:' line"
    assert any(e.startswith("# Result:") for e in entries), "no '# Result:' line"
    body = lines[len(header) : len(header) + len(PROLOGUE)]
    assert body == PROLOGUE, "the prologue after the header differs from the contract's"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_parameters_are_never_code(path: Path) -> None:
    text = _text(path)
    for pattern in (
        r"Invoke-Expression",
        r"\biex\b",
        r"ScriptBlock\]::Create",
        r"\bNewScriptBlock\b",
    ):
        assert not re.search(pattern, text, re.I), f"{pattern} in {path.name}"
    # C# for Add-Type only in single-quoted here-strings: nothing is interpolated into it.
    for m in re.finditer(r"Add-Type\s+-TypeDefinition\s+(\S+)", text):
        assert m.group(1) == "@'", (
            f"Add-Type source is not a single-quoted here-string: {m.group(0)}"
        )


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_one_json_line_on_stdout(path: Path) -> None:
    text = _text(path)
    assert "ConvertTo-Json -InputObject $result -Compress -Depth 8" in text
    for _, code in _code_lines(text):
        for writer in (
            "Write-Host",
            "Write-Output",
            "Write-Warning",
            "Write-Information",
            "Out-Host",
        ):
            assert writer not in code, f"{writer} would add to or interleave with stdout: {code!r}"
    last = text.rstrip("\r\n").splitlines()[-1]
    assert last.startswith("[regex]::Replace($json,"), (
        "the JSON line is not the script's last output"
    )


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_blank_lines(path: Path) -> None:
    # Scripts too long for -EncodedCommand go on stdin to `powershell.exe -Command -`, where a blank
    # line ends the multi-line block early (harness/remote/powershell.py).
    blank = [n for n, line in enumerate(_text(path).splitlines(), 1) if not line.strip()]
    assert not blank, f"blank lines at {blank}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_windows_powershell_51_compatible(path: Path) -> None:
    forbidden = {
        "??": "null-coalescing (PS 7)",
        "?.": "null-conditional member access (PS 7)",
        "-AsHashtable": "ConvertFrom-Json -AsHashtable (PS 6+)",
        "-Parallel": "ForEach-Object -Parallel (PS 7)",
        " && ": "pipeline chain operator (PS 7)",
        " || ": "pipeline chain operator (PS 7)",
        "Get-Error": "Get-Error (PS 7)",
        "exit ": "exit would end powershell.exe, not just the operation",
    }
    problems = [
        f"line {n}: {what}: {code.strip()!r}"
        for n, code in _code_lines(_text(path))
        for token, what in forbidden.items()
        if token in code
    ]
    assert not problems, "\n".join(problems)


def test_code_lines_skip_comments_strings_and_here_strings() -> None:
    text = "# a ?? b\n$x = 'a && b'\n$t = @'\nx || y\n'@\n$y = $a ?? $b\n"
    assert [n for n, _ in _code_lines(text)] == [2, 3, 6]
    assert [n for n, c in _code_lines(text) if "??" in c] == [6]
