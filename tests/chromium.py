"""Open an HTML file in headless Chromium, as a reader of the report would, from `file://`.

`render_page` takes a screenshot and dumps the DOM after the page's scripts ran (virtual time
budget), and records Chromium's NetLog of the DOM run in `out_dir/netlog.json`;
`page_requests` reads that log back: every http(s) request the page itself made (Chromium's own
background traffic, which has no initiator, is left out).

Chromium is required (Debian: `chromium fonts-dejavu-core`); the machine that runs the tests
must provide it. A missing browser fails the test with a message that says so: never a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ENV_CHROMIUM = "HARNESS_CHROMIUM"
TIMEOUT_S = 90.0
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1500,950",
    "--virtual-time-budget=8000",
]


def chromium() -> str:
    """The Chromium executable: `$HARNESS_CHROMIUM`, /usr/bin/chromium, or one on PATH."""
    candidates = [os.environ.get(ENV_CHROMIUM), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "Chromium is required to check the HTML report in a browser and was not found "
        f"(/usr/bin/chromium, PATH, ${ENV_CHROMIUM}): install it with "
        "`apt-get install -y --no-install-recommends chromium fonts-dejavu-core`"
    )


def _run(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Run Chromium in its own process group so a timeout kills its helpers too."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {timeout_s:g} s: {' '.join(argv)}")
    # Helpers (zygote, GPU, crashpad) may outlive the browser process: end the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _check(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-3000:]
        pytest.fail(f"chromium {what} failed (exit code {result.returncode}):\n{tail}")


def render_page(
    html: Path, out_dir: Path, *, fragment: str = "", timeout_s: float = TIMEOUT_S
) -> tuple[str, Path]:
    """(the DOM after the scripts ran, a PNG screenshot) of `html`, opened as file://...#fragment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = html.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    exe = chromium()
    shot = out_dir / "shot.png"
    shot.unlink(missing_ok=True)
    result = _run(
        [
            exe,
            *_FLAGS,
            f"--user-data-dir={out_dir / 'profile-shot'}",
            f"--screenshot={shot}",
            url,
        ],
        timeout_s,
    )
    _check(result, "--screenshot")
    if not shot.is_file() or shot.stat().st_size == 0:
        pytest.fail(f"chromium wrote no screenshot to {shot}")
    result = _run(
        [
            exe,
            *_FLAGS,
            f"--user-data-dir={out_dir / 'profile-dom'}",
            f"--log-net-log={out_dir / 'netlog.json'}",
            "--dump-dom",
            url,
        ],
        timeout_s,
    )
    _check(result, "--dump-dom")
    return result.stdout.decode("utf-8", "replace"), shot


def visible_text(dom: str) -> str:
    """The text of a DOM dump without scripts, styles and tags, whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", dom, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text)


def page_requests(netlog: Path) -> list[str]:
    """The http(s) URLs the page requested, from a NetLog written by `render_page`.

    Requests Chromium makes for itself carry the initiator "not an origin"; requests of a page
    opened from file:// carry its opaque origin "null".
    """
    text = netlog.read_text(encoding="utf-8").rstrip()
    try:
        log = json.loads(text)
    except ValueError:  # a log cut short when the browser exited: close the event list
        log = json.loads(text.rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls: list[str] = []
    for event in log["events"]:
        if names.get(event.get("type")) != "URL_REQUEST_START_JOB":
            continue
        params = event.get("params") or {}
        url = str(params.get("url", ""))
        if url.startswith(("http://", "https://")) and params.get("initiator") != "not an origin":
            urls.append(url)
    return urls
