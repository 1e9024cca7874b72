"""Shared pieces of the property suite: its hypothesis settings and hostile-input strategies.

Settings: reproducible (`derandomize`, no example database) and bounded, so the whole suite
runs in well under a minute on a small CI machine; a failure prints the example to keep as an
`@example`.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Scalars that break naive loaders: types, sizes, unicode, YAML specials.
HOSTILE_SCALARS = [
    "",
    "~",
    "null",
    "true",
    "on",
    "no",
    "0",
    "-1",
    "0x10",
    "1e999",
    "-.inf",
    ".nan",
    "9" * 400,
    "1_000",
    "0o777",
    "2001-12-14t21:59:43.10-05:00",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    "[]",
    "{}",
    "[1, [2, [3, [4]]]]",
    "{a: {b: {c: d}}}",
    "'quoted: value'",
    '"\\u0000 nul"',
    '"\\ud800"',
    "é€𝄞\u200b\u202e",
    "\ufeffbom",
    "a\tb",
    "&anchor x",
    "*undefined_alias",
    "<<: *a",
    "? complex key",
    "|\n  block",
    ">-\n  folded",
    "- list item",
    "%YAML 1.2",
    "---",
    "...",
    "@reserved",
    "`backtick",
    "env:VAR",
    "C:\\Windows\\System32",
    "../../../../etc/passwd",
    "x" * 5000,
]

ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
)

_VALUE = re.compile(
    r"^(?P<head>\s*(?:- )?[^:#\s][^:#]*:)(?P<sp>\s+)(?P<value>[^#\s].*?)(?P<tail>\s*#.*)?$"
)


@st.composite
def mutated_yaml(draw: st.DrawFn, text: str) -> str:
    """`text` (a real YAML file) with one to three hostile line-level mutations."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(
            st.sampled_from(
                ["value", "delete", "duplicate", "indent", "tab", "insert", "truncate", "nest"]
            )
        )
        line = lines[i]
        if kind == "value":
            m = _VALUE.match(line)
            if m:
                value = draw(st.one_of(st.sampled_from(HOSTILE_SCALARS), st.text(max_size=20)))
                lines[i] = f"{m['head']} {value}"
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "indent":
            lines[i] = " " * draw(st.integers(0, 9)) + line.lstrip()
        elif kind == "tab":
            lines[i] = "\t" + line
        elif kind == "insert":
            lines.insert(i, draw(st.sampled_from([*HOSTILE_SCALARS, "key: value", "x: &a [*a]"])))
        elif kind == "truncate":
            lines = lines[:i]
            lines.append(line[: draw(st.integers(0, len(line)))])
        elif kind == "nest":
            depth = draw(st.sampled_from([5, 99, 101, 3000]))
            lines.insert(i, "deep: " + "[" * depth + "]" * depth)
    out = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        out = "\ufeff" + out
    return out
