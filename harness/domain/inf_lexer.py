"""Lexical layer of the INF reader: bytes -> text -> sections of logical lines -> fields.

This follows the rules of Windows' setup parser as far as the harness needs them:

- encodings: UTF-16 LE/BE with a BOM (or without one when the NUL pattern is unmistakable),
  UTF-8 with or without a BOM, otherwise ANSI (cp1252, falling back to latin-1);
- line ends CRLF, LF or a lone CR; line numbers are 1-based in the original file;
- ``;`` starts a comment outside double quotes; a ``\\`` at the end of a line (after the
  comment and trailing blanks are removed) joins the next line;
- section names are case-insensitive and duplicate sections are merged in file order;
- inside double quotes ``""`` stands for one quote; quotes are removed from field values.

It also reads numbers (decimal or ``0x`` hex, as SetupGetIntField does) and ranks
TargetOSVersion decorations (``NTamd64.10.0...26100``). String substitution (``%strkey%``) is
the business of :mod:`harness.domain.inf`.

>>> sections = split_sections(logical_lines(decode_inf(b"[Version]\\r\\nClass = Net ; c\\r\\n", "x")))
>>> sections["version"].lines[0].text
'Class = Net'
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass


class InfError(ValueError):
    """An INF file that cannot be read; ``str(e)`` is ``path:line: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class RawLine:
    """One logical line of a section: comment removed, continuations joined, quotes kept."""

    line: int
    text: str


@dataclass(frozen=True)
class RawSection:
    """All lines of one section name (duplicates merged); ``name`` is the first spelling seen."""

    name: str
    line: int
    lines: tuple[RawLine, ...]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_of_offset(text: str) -> int:
    return len(_LINE_BREAK.findall(text)) + 1


def _decode_utf16(data: bytes, codec: str, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        good = data[: exc.start - (exc.start % 2)]
        prefix = good.decode(codec, errors="replace")
        raise InfError(
            name, _line_of_offset(prefix), f"not valid {codec.upper()} text ({exc.reason})"
        ) from None


def decode_inf(data: bytes, name: str) -> str:
    """Decode the bytes of an INF file as Windows would; the BOM is removed."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return _decode_utf16(data[2:], "utf-16-le", name)
    if data.startswith(codecs.BOM_UTF16_BE):
        return _decode_utf16(data[2:], "utf-16-be", name)
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            line = _line_of_offset(data[3 : 3 + exc.start].decode("utf-8", errors="replace"))
            raise InfError(name, line, f"not valid UTF-8 text ({exc.reason})") from None
    # UTF-16 without a BOM: an INF starts with ASCII ('[', ';', blank), so one of the two first
    # bytes is NUL and the other is not.
    if len(data) >= 4 and len(data) % 2 == 0:
        if data[1] == 0 and data[3] == 0 and data[0] != 0 and data[2] != 0:
            return _decode_utf16(data, "utf-16-le", name)
        if data[0] == 0 and data[2] == 0 and data[1] != 0 and data[3] != 0:
            return _decode_utf16(data, "utf-16-be", name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _strip_comment(text: str, line: int, name: str) -> str:
    """Remove a ``;`` comment outside quotes; an unterminated quote is an error."""
    in_quote = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_quote = not in_quote  # a doubled quote toggles twice: still correct
        elif ch == ";" and not in_quote:
            return text[:i]
    if in_quote:
        raise InfError(name, line, "unterminated quoted string")
    return text


def logical_lines(text: str, name: str = "<inf>") -> list[RawLine]:
    """Physical lines -> logical lines (comments removed, continuations joined, blanks dropped)."""
    out: list[RawLine] = []
    pending: list[str] = []
    start = 0
    for number, physical in enumerate(_LINE_BREAK.split(text), start=1):
        content = _strip_comment(physical, number, name).rstrip()
        if not pending:
            start = number
        if content.endswith("\\") and not content.lstrip().startswith("["):
            pending.append(content[:-1])
            continue
        pending.append(content)
        joined = "".join(pending).strip()
        pending = []
        if joined:
            out.append(RawLine(start, joined))
    if pending:
        joined = "".join(pending).strip()
        if joined:
            out.append(RawLine(start, joined))
    return out


def normalize_section(name: str, arch: str = "amd64") -> str:
    """The lookup key of a section name: case-folded, ``$ARCH$`` replaced by the target arch."""
    return re.sub(r"\$arch\$", arch.lower(), name.strip().lower())


def split_sections(
    lines: list[RawLine], name: str = "<inf>", arch: str = "amd64"
) -> dict[str, RawSection]:
    """Group logical lines under their section headers; lines before the first header are
    ignored (as Windows does). Duplicate sections are merged in file order."""
    order: dict[str, tuple[str, int]] = {}
    content: dict[str, list[RawLine]] = {}
    current: str | None = None
    for raw in lines:
        if raw.text.startswith("["):
            close = raw.text.find("]")
            if close < 0:
                raise InfError(name, raw.line, f"section header without closing ']': {raw.text}")
            section = raw.text[1:close].strip()
            current = normalize_section(section, arch)
            order.setdefault(current, (section, raw.line))
            content.setdefault(current, [])
            continue
        if current is not None:
            content[current].append(raw)
    return {key: RawSection(order[key][0], order[key][1], tuple(content[key])) for key in order}


def _split_unquoted(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    parts: list[str] = []
    in_quote = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            in_quote = not in_quote
        elif ch == sep and not in_quote and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def split_key(text: str) -> tuple[str | None, str]:
    """``key = value`` -> (raw key, raw value); a line whose first ``=`` comes after an
    unquoted comma (an AddReg entry, a file list) has no key."""
    parts = _split_unquoted(text, "=", maxsplit=1)
    if len(parts) == 1 or len(_split_unquoted(parts[0], ",")) > 1:
        return None, text
    return parts[0], parts[1]


def split_fields(text: str) -> list[str]:
    """Comma-separated raw fields, quotes kept (commas inside quotes do not split)."""
    return _split_unquoted(text, ",")


def unquote(field: str) -> str:
    """Remove quotes from one raw field: blanks outside quotes are trimmed, blanks inside kept,
    ``""`` inside quotes is one quote."""
    field = field.strip()
    if '"' not in field:
        return field
    out: list[str] = []
    i = 0
    in_quote = False
    while i < len(field):
        ch = field[i]
        if ch == '"':
            if in_quote and i + 1 < len(field) and field[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            in_quote = not in_quote
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_DECORATION = re.compile(r"^nt([a-z0-9_]*)((?:\.[^.]*){0,5})$")


def decoration_rank(decoration: str, arch: str) -> tuple[int, ...] | None:
    """Rank of a TargetOSVersion decoration for ``arch`` on the newest OS; None if it does
    not apply. Higher is better."""
    match = _DECORATION.match(normalize_section(decoration, arch))
    if match is None:
        return None
    platform, rest = match.group(1), match.group(2)
    if platform not in ("", arch):
        return None
    parts = rest.split(".")[1:] if rest else []
    parts += [""] * (5 - len(parts))
    major, minor, product, _suite, build = parts
    if product.strip() and parse_int(product) not in (None, 1):
        return None
    version = (parse_int(major) or 0, parse_int(minor) or 0, parse_int(build) or 0)
    return (*version, 1 if platform else 0)


def parse_int(text: str) -> int | None:
    """Decimal or ``0x`` hex (optionally negative), as SetupGetIntField reads it."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    digits = text[1:] if sign < 0 else text
    try:
        if digits.lower().startswith("0x"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 10) if digits.isdigit() else None
    except ValueError:
        return None
