"""`matrix.html`: the run's truth-table matrix as one self-contained HTML file (opens offline).

One table per DUT and build; a row per driver package, a column per port × KDP × DMAGuard ×
Verifier × session. A cell reads `expected → observed` DEVPKEY_Device_DmaRemappingPolicy, with
`55` when the device was blocked at plug (Code 55), `↑` when it started after unlock, and the
DMA probe (`✓` worked, `✗` blocked); its colour is the outcome, a dashed border marks a cell whose
expectations are not all documented, and it links to its Allure test result in report.html.
Filters (DUT, outcome, session, only what is not a plain pass) run in the page, no network; a link
can preset them (`matrix.html#dut=tb-01&notpass=1`), and `matrix.html#<scenario id>` points at
a cell.
What changed since the previous run of the plan (`changes.py`) is at the top.
"""

from __future__ import annotations

import html
from typing import Any

from harness.report.matrix import Cell, Matrix, Table

#: Outcome -> (background, text colour, legend label).
OUTCOME_STYLE = {
    "passed": ("#2e7d32", "#fff", "passed"),
    "observed": ("#7cb342", "#fff", "observed (undocumented cell measured)"),
    "failed": ("#c62828", "#fff", "failed (product defect)"),
    "expectation-may-be-wrong": ("#ef6c00", "#fff", "expectation may be wrong"),
    "dut-error": ("#6a1b9a", "#fff", "DUT error"),
    "infrastructure-error": ("#546e7a", "#fff", "lab infrastructure"),
    "harness-bug": ("#000", "#fff", "harness bug"),
    "not-run": ("#e0e0e0", "#333", "not run"),
}
_CSS = """
body{font:13px/1.35 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:12px;color:#222}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:14px 0 4px}
.meta{color:#555;margin-bottom:8px}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:6px 10px;margin:6px 0;font-weight:600}
.filters{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ddd;padding:6px 0;
z-index:2;display:flex;flex-wrap:wrap;gap:10px;align-items:center}
.filters label{white-space:nowrap}
table.m{border-collapse:collapse;margin-bottom:6px}
table.m th,table.m td{border:1px solid #ccc;padding:2px 3px;text-align:center}
table.m th.col{font-weight:normal;font-size:11px;line-height:1.15;background:#f3f3f3}
table.m th.leaf{min-width:34px}
table.m th.row{text-align:left;white-space:nowrap;font-weight:600}
table.m th.row small{display:block;font-weight:normal;color:#555}
td.c a{display:block;color:inherit;text-decoration:none;white-space:nowrap}
td.c{min-width:34px;font-size:12px;font-weight:600;line-height:1.1;padding:1px 2px}
td.c small{display:block;font-size:10px;font-weight:normal}td.c.soft{outline:2px dashed #ffb300;outline-offset:-3px}
td.empty{background:#fff}
.legend span{display:inline-block;padding:1px 6px;margin:2px;border-radius:3px}
.changes{border:1px solid #bbb;padding:6px 10px;margin:8px 0;background:#f6f8fa}
.changes li{margin:1px 0}
.hidden{display:none}
td.c:target{outline:3px solid #1565c0;outline-offset:1px}
"""
_JS = """
(function(){
  function apply(){
    var dut=document.getElementById('f-dut').value;
    var sess=document.getElementById('f-session').value;
    var notPass=document.getElementById('f-notpass').checked;
    var on={};document.querySelectorAll('input.f-out').forEach(function(b){on[b.value]=b.checked;});
    document.querySelectorAll('section.t').forEach(function(sec){
      sec.classList.toggle('hidden', dut!=='' && sec.dataset.dut!==dut);
    });
    document.querySelectorAll('td.c').forEach(function(td){
      var show=on[td.dataset.outcome]!==false;
      if(sess!=='' && td.dataset.session!==sess) show=false;
      if(notPass && td.dataset.outcome==='passed') show=false;
      td.style.visibility=show?'visible':'hidden';
    });
  }
  document.querySelectorAll('.filters select,.filters input').forEach(function(e){
    e.addEventListener('change',apply);
  });
  // a link can carry the filters: matrix.html#dut=tb-01&session=locked&notpass=1&outcome=failed
  var h=location.hash.slice(1);
  if(h.indexOf('=')>=0){
    var q=new URLSearchParams(h);
    if(q.get('dut')!==null) document.getElementById('f-dut').value=q.get('dut');
    if(q.get('session')!==null) document.getElementById('f-session').value=q.get('session');
    if(q.get('notpass')) document.getElementById('f-notpass').checked=true;
    if(q.get('outcome')!==null){
      var keep=q.get('outcome').split(',');
      document.querySelectorAll('input.f-out').forEach(function(b){
        b.checked=keep.indexOf(b.value)>=0;
      });
    }
  }
  apply();
})();
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _devpkey(value: int | None) -> str:
    return "–" if value is None else str(value)


def cell_text(cell: Cell) -> str:
    """The cell's short text: `expected→observed`, then `55` (blocked), `↑` (started after
    unlock), and the probe (`✓`/`✗`)."""
    text = f"{_devpkey(cell.expected_devpkey)}→{_devpkey(cell.observed_devpkey)}"
    if cell.started_at_plug is False and cell.problem_code == 55:
        text += " 55"
    if cell.started_after_unlock:
        text += " ↑"
    if cell.probe == "ok":
        text += " ✓"
    elif cell.probe == "blocked":
        text += " ✗"
    return text


def cell_title(cell: Cell) -> str:
    """The tooltip: every field, expected against observed, with its evidence level."""
    ev = cell.evidence
    lines = [
        cell.scenario,
        f"outcome: {cell.outcome} (evidence: {cell.evidence_level})",
        f"DEVPKEY expected {_devpkey(cell.expected_devpkey)} ({ev.get('devpkey', '?')}), "
        f"observed {_devpkey(cell.observed_devpkey)}",
        f"at plug: {'started' if cell.started_at_plug else 'not started'}"
        f" (problem {cell.problem_code}; expected {cell.expected_problem_code},"
        f" {ev.get('problem_code', '?')})",
    ]
    if cell.expected_starts_after_unlock is not None or cell.started_after_unlock is not None:
        lines.append(
            f"after unlock: {'started' if cell.started_after_unlock else 'not started'}"
            f" (expected {'start' if cell.expected_starts_after_unlock else 'no start'},"
            f" {ev.get('starts_after_unlock', '?')})"
        )
    lines.append(f"DMA probe: {cell.probe or 'not run'}")
    lines += [f"observation: {o}" for o in cell.observations]
    if cell.message:
        lines.append(cell.message[:300])
    return "\n".join(lines)


def _soft(cell: Cell) -> bool:
    """A cell whose scenario's evidence level is not `documented` (the level `plan show`, the
    journal and the qualification bundle report)."""
    return cell.evidence_level != "documented"


def _header_rows(columns: list[str]) -> str:
    """One header row per condition (port, KDP, DMAGuard, Verifier, session); neighbouring
    columns that share a value up to that level share one header cell (the columns are sorted
    by their conditions), so the nightly's 30-odd columns fit a screen."""
    parts = [c.split(" · ") for c in columns]
    depth = max((len(p) for p in parts), default=0)
    rows = []
    for level in range(depth):
        cells = []
        i = 0
        while i < len(parts):
            j = i + 1
            while j < len(parts) and parts[j][: level + 1] == parts[i][: level + 1]:
                j += 1
            value = parts[i][level] if level < len(parts[i]) else ""
            cls = "col leaf" if level == depth - 1 else "col"
            cells.append(f'<th class="{cls}" colspan="{j - i}">{_esc(value)}</th>')
            i = j
        head = f'<th class="row" rowspan="{depth}">driver package</th>' if level == 0 else ""
        rows.append(f"<tr>{head}{''.join(cells)}</tr>")
    return "".join(rows)


def _cell_html(cell: Cell) -> str:
    """Two short lines: `expected→observed`, then the marks (55, ↑, ✓/✗)."""
    text = cell_text(cell)
    first, _, rest = text.partition(" ")
    return f"{_esc(first)}<small>{_esc(rest) or '&nbsp;'}</small>".replace("&amp;nbsp;", "&nbsp;")


def _table(t: Table, report_href: str) -> str:
    out = [
        f'<section class="t" data-dut="{_esc(t.dut)}"><h2>{_esc(t.dut)} — '
        f"{_esc(t.os or 'Windows')} build {_esc(t.build)}</h2>",
        '<table class="m"><thead>',
        _header_rows(t.columns),
        "</thead><tbody>",
    ]
    for row in t.rows:
        by_col = {c.column: c for c in row.cells}
        out.append(
            f'<tr><th class="row">{_esc(row.package)}<small>{_esc(row.directives)}</small></th>'
        )
        for col in t.columns:
            cell = by_col.get(col)
            if cell is None:
                out.append('<td class="empty"></td>')
                continue
            bg, fg, _ = OUTCOME_STYLE.get(cell.outcome, ("#fff", "#000", cell.outcome))
            href = f"{report_href}#testresult/{cell.allure_id}" if cell.allure_id else ""
            inner = _cell_html(cell)
            link = f'<a href="{_esc(href)}">{inner}</a>' if href else inner
            out.append(
                f'<td class="c{" soft" if _soft(cell) else ""}" style="background:{bg};'
                f'color:{fg}" data-outcome="{_esc(cell.outcome)}" '
                f'data-session="{_esc(col.rsplit(" · ", 1)[-1])}" '
                f'id="{_esc(cell.scenario)}" title="{_esc(cell_title(cell))}">'
                f"{link}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table></section>")
    return "".join(out)


def _changes(changes: dict[str, Any] | None) -> str:
    if not changes:
        return ""
    if not changes.get("previous_run"):
        return '<div class="changes"><b>What changed:</b> no previous run of this plan on this lab.</div>'
    items: list[str] = []
    for key, label in (
        ("new_failures", "new failure"),
        ("fixed", "fixed"),
        ("changed_observations", "observed value changed"),
        ("facts_changed", "DUT fact changed"),
        ("new_scenarios", "new scenario"),
        ("gone_scenarios", "no longer run"),
    ):
        for entry in changes.get(key) or []:
            items.append(f"<li><b>{_esc(label)}</b>: {_esc(entry.get('text', entry))}</li>")
    head = f"<b>What changed</b> since {_esc(changes['previous_run'])}"
    body = f"<ul>{''.join(items)}</ul>" if items else ": nothing."
    return f'<div class="changes">{head}{body}</div>'


def render_matrix_html(
    m: Matrix, *, changes: dict[str, Any] | None = None, report_href: str = "report.html"
) -> str:
    """The whole page."""
    duts = sorted({t.dut for t in m.tables})
    sessions = sorted({c.rsplit(" · ", 1)[-1] for t in m.tables for c in t.columns}, key=str.lower)
    counts = ", ".join(f"{n} {o}" for o, n in sorted(m.counts.items()))
    banner = (
        '<div class="banner" id="virtual-banner">Virtual lab: these results come from the '
        "simulated Windows of the virtual lab, not from real hardware.</div>"
        if m.virtual
        else ""
    )
    outcome_boxes = "".join(
        f'<label><input type="checkbox" class="f-out" value="{_esc(o)}" checked> '
        f'<span style="background:{bg};color:{fg};padding:0 4px">{_esc(o)}</span></label>'
        for o, (bg, fg, _) in OUTCOME_STYLE.items()
        if o in m.counts
    )
    filters = (
        '<div class="filters"><label>DUT <select id="f-dut"><option value="">all</option>'
        + "".join(f'<option value="{_esc(d)}">{_esc(d)}</option>' for d in duts)
        + '</select></label><label>session <select id="f-session"><option value="">all</option>'
        + "".join(f'<option value="{_esc(s)}">{_esc(s)}</option>' for s in sessions)
        + '</select></label><label><input type="checkbox" id="f-notpass"> only what is not a '
        "plain pass</label>" + outcome_boxes + "</div>"
    )
    legend = (
        '<div class="legend">Cell: expected→observed DEVPKEY_Device_DmaRemappingPolicy '
        "(– none); 55 blocked at plug (Code 55); ↑ started after unlock; ✓/✗ DMA probe "
        "worked/blocked; dashed border: the scenario's evidence is inferred or unverified. "
        + "".join(
            f'<span style="background:{bg};color:{fg}">{_esc(label)}</span>'
            for bg, fg, label in OUTCOME_STYLE.values()
        )
        + "</div>"
    )
    tables = "".join(_table(t, report_href) for t in m.tables) or "<p>No scenario ran.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(m.plan)} matrix — {_esc(m.run_id)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{_esc(m.plan)}: driver × conditions</h1>"
        f'<div class="meta">run {_esc(m.run_id)} · lab {_esc(m.lab)} · {_esc(counts)} · '
        f'<a href="{_esc(report_href)}">Allure report</a></div>'
        f"{banner}{_changes(changes)}{filters}{legend}{tables}"
        f"<script>{_JS}</script></body></html>\n"
    )
