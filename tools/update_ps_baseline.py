"""Record how many syntax-error nodes tree-sitter-powershell reports in each operation script.

`tests/unit/test_ops_scripts.py` fails when a script in `harness/windows/ops/` gets more error
nodes than its entry in `tests/unit/ps_parse_baseline.json`, or has no entry. The count is a
baseline, not a verdict: the grammar rejects some valid Windows PowerShell 5.1 (see
protocols-and-tools.md section 7), so only an increase means something. The authoritative check is
the `ps_parse` operation (PowerShell's own parser) on a real DUT.

Run after adding a script, or after a change whose new count you have checked by hand:

    python3 tools/update_ps_baseline.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPS_DIR = ROOT / "harness" / "windows" / "ops"
BASELINE = ROOT / "tests" / "unit" / "ps_parse_baseline.json"
UPDATE_COMMAND = "python3 tools/update_ps_baseline.py"


def error_count(source: bytes) -> int:
    """The number of ERROR and MISSING nodes in tree-sitter-powershell's parse of `source`."""
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_powershell.language()))
    count = 0
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        stack.extend(node.children)
    return count


def current_counts(ops_dir: Path = OPS_DIR) -> dict[str, int]:
    """File name -> error count, for every `.ps1` in `ops_dir`."""
    return {p.name: error_count(p.read_bytes()) for p in sorted(ops_dir.glob("*.ps1"))}


def load_baseline(path: Path = BASELINE) -> dict[str, int]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def main() -> int:
    old = load_baseline()
    new = current_counts()
    BASELINE.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before != after:
            print(f"{name}: {before} -> {after}")
    print(f"{BASELINE.relative_to(ROOT)}: {len(new)} scripts, {sum(new.values())} error nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
