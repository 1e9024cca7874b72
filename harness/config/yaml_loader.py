"""YAML loading with line numbers: plain data plus a map from key path to line.

Built on PyYAML's SafeLoader with two changes that matter for lab files:

- YAML 1.1 reads `on`/`off`/`yes`/`no` as booleans; here they stay strings (only
  `true`/`false` are booleans), so `kdp: on` means the string "on".
- Duplicate mapping keys are an error (PyYAML silently keeps the last one).

Mapping keys are always the text as written (`01:` is the key "01", not the int 1).
Every failure is a `ConfigError` naming the file and line.

>>> doc = load_yaml_text("duts:\\n  tb-01:\\n    kdp: on\\n", "x.yaml")
>>> doc.data
{'duts': {'tb-01': {'kdp': 'on'}}}
>>> doc.line_of(("duts", "tb-01", "kdp"))
3
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import ConfigError

KeyPath = tuple[str | int, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
#: Upper bound on nodes visited (aliases can expand a small file into a huge tree).
_MAX_NODES = 200_000
_MAX_BYTES = 5_000_000
#: Deepest nesting of mappings/sequences accepted (lab files need about 6; PyYAML's composer
#: recurses per level, so a hostile `[[[[...` would otherwise end in a slow RecursionError).
_MAX_DEPTH = 100


class _LabLoader(yaml.SafeLoader):
    """SafeLoader whose only booleans are true/false (YAML 1.2 style), with a nesting limit."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {_MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_LabLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LabLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def format_key_path(path: KeyPath) -> str:
    """`("exclude", 2, "dut")` -> `exclude[2].dut`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class LoadedYaml:
    """A YAML document as plain data, with the line (1-based) of every key and list item."""

    path: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:n]))
            if line is not None:
                return line
        return None

    def error(self, message: str, path: KeyPath = ()) -> ConfigError:
        """A ConfigError at `path` (line of the key, key path printed dotted)."""
        return ConfigError(
            message, path=self.path, line=self.line_of(path), key=format_key_path(path) or None
        )


class _Builder:
    """Turns a composed node tree into plain data, recording lines, rejecting duplicates."""

    def __init__(self, loader: _LabLoader, path: str) -> None:
        self.loader = loader
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.visited = 0

    def _err(self, message: str, node: Node, key_path: KeyPath) -> ConfigError:
        return ConfigError(
            message,
            path=self.path,
            line=node.start_mark.line + 1,
            key=format_key_path(key_path) or None,
        )

    def build(self, node: Node, key_path: KeyPath, stack: frozenset[int]) -> Any:
        self.visited += 1
        if self.visited > _MAX_NODES:
            raise self._err(
                "document too large (too many nodes after alias expansion)", node, key_path
            )
        if id(node) in stack:
            raise self._err("recursive alias", node, key_path)
        if isinstance(node, MappingNode):
            return self._mapping(node, key_path, stack | {id(node)})
        if isinstance(node, SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*key_path, i)] = item.start_mark.line + 1
                items.append(self.build(item, (*key_path, i), stack | {id(node)}))
            return items
        return self.loader.construct_object(node, deep=True)

    def _mapping(
        self, node: MappingNode, key_path: KeyPath, stack: frozenset[int]
    ) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self._err("mapping keys must be plain scalars", key_node, key_path)
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in out:
                first = self.lines.get((*key_path, key))
                raise ConfigError(
                    f"duplicate key '{key}' (first defined on line {first})",
                    path=self.path,
                    line=line,
                    key=format_key_path(key_path) or None,
                )
            self.lines[(*key_path, key)] = line
            out[key] = self.build(value_node, (*key_path, key), stack)
        return out


def load_yaml_text(text: str, path: str) -> LoadedYaml:
    """Parse `text` (named `path` in errors) into a LoadedYaml whose top level is a mapping."""
    loader: _LabLoader | None = None
    try:
        loader = _LabLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError("the file is empty: expected a mapping", path=path, line=1)
        if not isinstance(node, MappingNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a single value"
            raise ConfigError(
                f"expected a mapping of keys at the top level, found {kind}",
                path=path,
                line=node.start_mark.line + 1,
            )
        builder = _Builder(loader, path)
        data = builder.build(node, (), frozenset())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(f"invalid YAML: {what}", path=path, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise ConfigError(f"invalid YAML: {exc.reason}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from None
    except RecursionError:
        line = loader.get_mark().line + 1 if loader is not None else None
        raise ConfigError("invalid YAML: nesting too deep", path=path, line=line) from None
    finally:
        if loader is not None:
            loader.dispose()
    builder.lines[()] = 1
    return LoadedYaml(path=path, data=data, lines=builder.lines)


def load_yaml(path: str | Path) -> LoadedYaml:
    """Read and parse a YAML file; any problem (missing, binary, bad YAML) is a ConfigError."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    if len(raw) > _MAX_BYTES:
        raise ConfigError(f"file too large ({len(raw)} bytes)", path=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    return load_yaml_text(text, name)
