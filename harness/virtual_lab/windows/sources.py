"""A simulated DUT's display language, and which source an operation's script reads.

Real Windows prints pnputil, bcdedit and verifier output in the display language: labels and
yes/no values are translated, names of drivers, INFs and GUIDs are not. Quirk `locale`
(`en-US` by default, `de-DE`, `ja-JP`) picks the language of the simulated tools. The German and
Japanese strings below are plausible renderings written for this lab; they are illustrative, not
captured from a real host (docs/windows-operations.md, "Display language").

An operation's handler answers from the source the script's code reads (`machine.op_script`,
comments removed), so a script that parses a localized tool's text gets, on a de-DE or ja-JP DUT,
what that parse gets on a real one, and a script that reads a locale-free source (WMI, the
registry, the BCD WMI provider, event data) gets the truth.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.virtual_lab.windows.machine import WindowsMachine

LOCALES = ("en-US", "de-DE", "ja-JP")

#: pnputil /enum-drivers and /enum-devices labels, bcdedit yes/no, verifier /query texts.
TEXTS: dict[str, dict[str, str]] = {
    "en-US": {
        "banner": "Microsoft PnP Utility",
        "published": "Published Name",
        "original": "Original Name",
        "provider": "Provider Name",
        "class": "Class Name",
        "class_guid": "Class GUID",
        "version": "Driver Version",
        "signer": "Signer Name",
        "instance": "Instance ID",
        "description": "Device Description",
        "manufacturer": "Manufacturer Name",
        "status": "Status",
        "problem": "Problem Code",
        "driver": "Driver Name",
        "started": "Started",
        "problem_status": "Problem",
        "disconnected": "Disconnected",
        "yes": "Yes",
        "no": "No",
        "vf_none": "No drivers are currently verified.",
        "vf_level": "Level",
        "vf_drivers": "Verified drivers",
        "vf_name": "Name",
        "vf_loads": "loads",
        "vf_unloads": "unloads",
    },
    "de-DE": {
        "banner": "Microsoft-PnP-Dienstprogramm",
        "published": "Veröffentlichter Name",
        "original": "Ursprünglicher Name",
        "provider": "Anbietername",
        "class": "Klassenname",
        "class_guid": "Klassen-GUID",
        "version": "Treiberversion",
        "signer": "Signierername",
        "instance": "Instanz-ID",
        "description": "Gerätebeschreibung",
        "manufacturer": "Herstellername",
        "status": "Status",
        "problem": "Problemcode",
        "driver": "Treibername",
        "started": "Gestartet",
        "problem_status": "Problem",
        "disconnected": "Getrennt",
        "yes": "Ja",
        "no": "Nein",
        "vf_none": "Zurzeit werden keine Treiber überprüft.",
        "vf_level": "Stufe",
        "vf_drivers": "Überprüfte Treiber",
        "vf_name": "Name",
        "vf_loads": "Ladevorgänge",
        "vf_unloads": "Entladevorgänge",
    },
    "ja-JP": {
        "banner": "Microsoft PnP ユーティリティ",
        "published": "公開名",
        "original": "元の名前",
        "provider": "プロバイダー名",
        "class": "クラス名",
        "class_guid": "クラス GUID",
        "version": "ドライバー バージョン",
        "signer": "署名者名",
        "instance": "インスタンス ID",
        "description": "デバイスの説明",
        "manufacturer": "製造元名",
        "status": "状態",
        "problem": "問題コード",
        "driver": "ドライバー名",
        "started": "開始",
        "problem_status": "問題",
        "disconnected": "切断",
        "yes": "はい",
        "no": "いいえ",
        "vf_none": "現在検証されているドライバーはありません。",
        "vf_level": "レベル",
        "vf_drivers": "検証済みドライバー",
        "vf_name": "名前",
        "vf_loads": "読み込み",
        "vf_unloads": "アンロード",
    },
}


def locale(machine: WindowsMachine) -> str:
    """The DUT's display language (quirk `locale`, case-blind; unknown ones read as en-US)."""
    wanted = str(machine.quirks.get("locale", "en-US")).lower()
    return next((name for name in LOCALES if name.lower() == wanted), "en-US")


def text(machine: WindowsMachine, key: str) -> str:
    """One localized string of the DUT's display language."""
    return TEXTS[locale(machine)][key]


def english(machine: WindowsMachine) -> bool:
    return locale(machine) == "en-US"


def reads(machine: WindowsMachine, *tokens: str) -> bool:
    """Whether the running operation's code (comments removed) uses any of `tokens`."""
    code = machine.op_script.lower()
    return any(t.lower() in code for t in tokens)


def reads_pattern(machine: WindowsMachine, pattern: str) -> bool:
    """Whether the running operation's code matches `pattern` (case-blind)."""
    return re.search(pattern, machine.op_script, re.IGNORECASE) is not None


def label_blocks(output: str, labels: dict[str, str], first: str) -> list[dict[str, str]]:
    """What a parser keyed on `labels` (label -> field) finds in "Label: value" blocks that
    start at label `first`: the fields of each block. Labels it does not know are skipped, so
    an English-keyed parser finds no block in German or Japanese output."""
    blocks: list[dict[str, str]] = []
    for line in output.splitlines():
        match = re.match(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$", line)
        if match is None or match.group(1) not in labels:
            continue
        label, value = match.group(1), match.group(2)
        if label == first:
            blocks.append({})
        if blocks:
            blocks[-1][labels[label]] = value
    return blocks


__all__ = [
    "LOCALES",
    "TEXTS",
    "english",
    "label_blocks",
    "locale",
    "reads",
    "reads_pattern",
    "text",
]
