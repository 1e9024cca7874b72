"""Every `harness` command starts by loading every command module (to register it), so a
command module must not import the transports, the checks or the virtual lab at module level:
they cost about 0.3 s of CPU at each start (`harness run` starts the controller, and a lab's
cron and CI start many). The command that needs them imports them when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("paramiko", "winrm", "asyncssh", "spnego", "harness.remote", "harness.virtual_lab")


def _modules_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_loading_the_cli_imports_no_transport_and_no_virtual_lab() -> None:
    loaded = _modules_after("import harness.cli.main")
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_the_run_controller_imports_no_transport() -> None:
    loaded = _modules_after("import harness.cli.run_job")
    heavy = sorted(m for m in loaded if m.split(".")[0] in {"paramiko", "winrm", "asyncssh"})
    assert heavy == []
