"""Print an HTML file to PDF with headless Chromium, when Chromium is installed.

Used for the qualification bundle's `summary.pdf`. Chromium is found as `$HARNESS_CHROMIUM`,
then `chromium`, `chromium-browser` or `google-chrome` on PATH; without one, nothing is printed
and the caller says so. Printing is bounded by a deadline; Chromium runs in its own process
group, so a timeout or a signal stops its helper processes too, and its profile lives in a
temporary directory that is removed.

>>> print_pdf(Path("qualification/summary.html"), Path("qualification/summary.pdf"))  # doctest: +SKIP
PosixPath('qualification/summary.pdf')
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from harness.errors import InfrastructureError

ENV_CHROMIUM = "HARNESS_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    configured = os.environ.get(ENV_CHROMIUM)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, *, timeout_s: float = 60.0) -> Path | None:
    """`pdf` printed from `html`, or None when no Chromium is installed.

    InfrastructureError when Chromium fails or does not finish within `timeout_s`."""
    exe = find_chromium()
    if exe is None:
        return None
    partial = pdf.with_name(pdf.name + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-pdf-") as profile:
        argv = [
            exe,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={partial}",
            html.resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses its sandbox as root
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise InfrastructureError(
                f"chromium did not print {html.name} within {timeout_s:g} s"
            ) from None
        except BaseException:
            _kill(proc)
            raise
        finally:
            if proc.returncode is None:  # not reaped: the group id is still chromium's own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its helpers, if any outlived it
    if proc.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        tail = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:]
        raise InfrastructureError(
            f"chromium could not print {html.name} (exit code {proc.returncode}): {' '.join(tail)}"
        )
    os.chmod(partial, 0o600)
    partial.replace(pdf)
    return pdf


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:  # once reaped, its group id may be another process's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
