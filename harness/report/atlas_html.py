"""`atlas.html`: the measured truth table as one offline page.

One row per cell the lab has measured (build and the oracle's conditions), with the expected
behaviour and its evidence level, then each distinct behaviour Windows showed: how often, on
which DUTs, in how many runs, first and last seen. Cells where Windows disagreed with the oracle
come first and are marked; undocumented (`unverified`) cells are marked too.
"""

from __future__ import annotations

import html
from typing import Any

from harness.report.atlas import Atlas, AtlasCell, describe_behaviour

_CSS = """
body{font:13px/1.4 system-ui,"DejaVu Sans",sans-serif;margin:12px;color:#222}
h1{font-size:18px;margin:0 0 4px}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:3px 5px;vertical-align:top;text-align:left}
th{background:#f3f3f3}tr.disagree td{background:#fdecea}tr.unverified td.ev{background:#fff3cd}
.b{margin:1px 0}.b.no{color:#b71c1c;font-weight:600}.meta{color:#555;margin-bottom:8px}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def conditions_text(key: dict[str, Any]) -> str:
    return (
        f"INF {'+'.join(key['inf'])}"
        + (
            f", RemappingSupported {key['device_remapping_supported']}"
            if key["device_remapping_supported"] != "absent"
            else ""
        )
        + (
            f", RemappingFlags {key['device_remapping_flags']}"
            if key["device_remapping_flags"] != "absent"
            else ""
        )
        + (", graphics" if key["graphics"] else "")
        + f"; {key['port']} port; KDP {key['kdp']}; DMAGuard {key['dmaguard']}; "
        f"DV {key['verifier_dma']}; {key['session']}"
    )


def _row(cell: AtlasCell) -> str:
    cls = " ".join(
        c
        for c in ("disagree" if cell.disagrees else "", cell.evidence_level)
        if c in ("disagree", "unverified")
    )
    behaviours = "".join(
        f'<div class="b{"" if b.agrees else " no"}">{"" if b.agrees else "≠ "}'
        f"{_esc(describe_behaviour(b.observed))}: {b.count}× on {_esc(', '.join(b.duts))}, "
        f"{len(b.runs)} run(s), {_esc(b.first[:10])} … {_esc(b.last[:10])}</div>"
        for b in cell.behaviours
    )
    return (
        f'<tr class="{cls}"><td>{cell.key["build"]}</td><td>{_esc(conditions_text(cell.key))}</td>'
        f"<td>{_esc(describe_behaviour(cell.expected))}</td>"
        f'<td class="ev">{_esc(cell.evidence_level)}</td><td>{behaviours}</td></tr>'
    )


def render_atlas_html(atlas: Atlas) -> str:
    cells = sorted(atlas.cells, key=lambda c: (not c.disagrees, c.key["build"]))
    disagree = sum(1 for c in cells if c.disagrees)
    unverified = sum(1 for c in cells if c.evidence_level == "unverified")
    rows = "".join(_row(c) for c in cells) or '<tr><td colspan="5">No observation.</td></tr>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Atlas</title>'
        f"<style>{_CSS}</style></head><body><h1>Atlas: what Windows did, measured</h1>"
        f'<div class="meta">{len(atlas.runs)} runs, {sum(c.observations for c in cells)} '
        f"observations, {len(cells)} cells; {disagree} where Windows disagreed with the oracle, "
        f"{unverified} undocumented (unverified).</div>"
        "<table><thead><tr><th>build</th><th>conditions</th><th>expected</th><th>evidence</th>"
        f"<th>measured</th></tr></thead><tbody>{rows}</tbody></table></body></html>\n"
    )
