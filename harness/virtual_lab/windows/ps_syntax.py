"""A structural syntax check of PowerShell text for the virtual lab's `ps_parse` operation.

A real host runs PowerShell's own parser (`[System.Management.Automation.Language.Parser]::
ParseInput`). The virtual lab has no PowerShell, so it checks what breaks most often when a
script is damaged in transit or by an edit: strings (single, double with backtick escapes,
here-strings) and comments (`#`, `<# #>`) terminated, and `()`, `{}`, `[]` balanced and
properly nested. Errors come back in the parser's shape: line, column, message.

>>> check_syntax("if ($a) { 'x' }")
[]
>>> check_syntax("if ($a) { 'x' ")[0]["message"]
"Missing closing '}' in statement block or type definition."
"""

from __future__ import annotations

from typing import Any

_CLOSE = {"(": ")", "{": "}", "[": "]"}
_MISSING = {
    "{": "Missing closing '}' in statement block or type definition.",
    "(": "Missing closing ')' in expression.",
    "[": "Missing closing ']'.",
}


def check_syntax(text: str) -> list[dict[str, Any]]:
    stack: list[tuple[str, int, int]] = []
    i, line, col, n = 0, 1, 1, len(text)

    def err(message: str, at_line: int, at_col: int) -> list[dict[str, Any]]:
        return [{"line": at_line, "column": at_col, "message": message}]

    def advance(count: int) -> None:
        nonlocal i, line, col
        for _ in range(count):
            if i < n and text[i] == "\n":
                line, col = line + 1, 1
            else:
                col += 1
            i += 1

    while i < n:
        ch, two = text[i], text[i : i + 2]
        if two == "<#":
            end = text.find("#>", i + 2)
            if end < 0:
                return err("Missing end of comment block '#>'.", line, col)
            advance(end + 2 - i)
        elif ch == "#":
            while i < n and text[i] != "\n":
                advance(1)
        elif two in ("@'", '@"') and text[i + 2 : i + 3] in ("\n", "\r"):
            quote, start = two[1], (line, col)
            end = text.find("\n" + quote + "@", i)
            if end < 0:
                return err("The string is missing the terminator: " + quote + "@.", *start)
            advance(end + 3 - i)
        elif ch == "'":
            start = (line, col)
            advance(1)
            while True:
                if i >= n:
                    return err("The string is missing the terminator: '.", *start)
                if text[i] == "'" and text[i + 1 : i + 2] == "'":
                    advance(2)
                elif text[i] == "'":
                    advance(1)
                    break
                else:
                    advance(1)
        elif ch == '"':
            start = (line, col)
            advance(1)
            while True:
                if i >= n:
                    return err('The string is missing the terminator: ".', *start)
                if text[i] == "`":
                    advance(2)
                elif text[i] == '"':
                    advance(1)
                    break
                else:
                    advance(1)
        elif ch == "`":
            advance(2)
        elif ch in _CLOSE:
            stack.append((ch, line, col))
            advance(1)
        elif ch in ")}]":
            if not stack or _CLOSE[stack[-1][0]] != ch:
                return err(f"Unexpected token '{ch}' in expression or statement.", line, col)
            stack.pop()
            advance(1)
        else:
            advance(1)
    if stack:
        opener, at_line, at_col = stack[-1]
        return err(_MISSING[opener], at_line, at_col)
    return []
