"""Render a run's `allure-results/` into the single-file, offline `report.html`.

The tool is npm `allure` 3.x (pinned in package.json, installed by `npm ci` into
`node_modules/`), with its `allure2` plugin in single-file mode, run as

    ALLURE_NO_ANALYTICS=true allure generate --config allurerc.mjs <allure-results>

from a private temporary directory. The config file is plain data (`export default {...}`, no
`import "allure"`), so it works wherever the package is installed. With a history file, Allure
appends one line per render and shows trends from the second run of the same plan on.

>>> history_file(Path("reports"), "TB release / qualification").name
'TB_release_qualification-dcfd04f2.jsonl'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import harness
from harness.errors import ConfigError, InfrastructureError
from harness.private_files import private_dir
from harness.report.allure_files import (
    environment_from,
    mark_observations,
    write_categories,
    write_environment,
)
from harness.report.journal import Journal
from harness.report.run_dir import RunDir
from harness.report.run_pages import add_matrix_links

ENV_ALLURE = "HARNESS_ALLURE"
# the allure release package.json pins (tests/unit/test_report_files.py keeps the two equal)
ALLURE_VERSION = "3.18.0"
HISTORY_DIR = ".history"
#: The message of the single-file plugin when the embedded data exceeds what it can inline.
TOO_LARGE = "too large to be generated in the single file mode"
_STDERR_TAIL = 2000
#: Seconds to wait for the killed tool to be reaped.
_KILL_WAIT_S = 10.0


def repo_root() -> Path:
    """The directory holding the `harness` package (and package.json, node_modules/)."""
    return Path(harness.__file__).resolve().parent.parent


def find_allure() -> Path:
    """The allure executable: `$HARNESS_ALLURE`, else `<repo>/node_modules/.bin/allure`, else PATH."""
    configured = os.environ.get(ENV_ALLURE)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{ENV_ALLURE}={configured}: no such file")
        return path
    local = repo_root() / "node_modules" / ".bin" / "allure"
    if local.is_file():
        return local
    on_path = shutil.which("allure")
    if on_path:
        return Path(on_path)
    if (repo_root() / "package.json").is_file():  # a source checkout
        how = f"run `npm ci` in {repo_root()}"
    else:  # an installed copy: site-packages has no package.json
        how = f"install it with `npm install -g allure@{ALLURE_VERSION}`"
    raise ConfigError(
        f"the allure report tool is not installed: {how} "
        f"(or set {ENV_ALLURE} to the allure executable)"
    )


def history_file(reports_root: Path, plan_name: str) -> Path:
    """`<reports_root>/.history/<plan>.jsonl`: the trend history shared by the runs of one plan.

    A name that is not already a safe file name is sanitised and suffixed with a short hash of
    the original, so two plans whose names sanitise alike do not share a history.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", plan_name).strip("._-") or "plan"
    if safe != plan_name:
        digest = hashlib.sha256(plan_name.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:80]}-{digest}"
    return reports_root / HISTORY_DIR / f"{safe}.jsonl"


def allure_config(*, title: str, output: Path, history: Path | None) -> str:
    """The allurerc.mjs text: a plain object, every value JSON-encoded (ASCII only)."""
    config: dict[str, object] = {"name": title, "output": str(output)}
    if history is not None:
        config["historyPath"] = str(history)
    options = {"reportName": title, "singleFile": True, "reportLanguage": "en"}
    config["plugins"] = {"allure2": {"options": options}}
    return "export default " + json.dumps(config, indent=2, ensure_ascii=True) + ";\n"


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _STDERR_TAIL else "..." + text[-_STDERR_TAIL:]


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM during the render raises KeyboardInterrupt, as Ctrl-C does, so the tool is killed
    and the temporary directory removed on the way out (the default action would just exit)."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str], *, cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run `argv` in its own process group; on timeout the whole group is killed."""
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true", NO_COLOR="1")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise InfrastructureError(f"cannot start {argv[0]}: {exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException as exc:
        # a timeout, or Ctrl-C/SIGTERM (see `_stop_on_sigterm`): the tool runs in its own
        # session, so nothing else stops it; kill its whole group before the caller goes on.
        if proc.returncode is None:  # once reaped, its group id may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        raise InfrastructureError(
            f"allure generate did not finish within {timeout_s:g} s: {_tail(err or out)}"
        ) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def prepare_results(run_dir: RunDir) -> Path:
    """Complete `run_dir/allure-results/` for any Allure reader (report.html, a CI's own
    Allure): categories.json, environment.properties, the observation messages, and each
    result's link to its matrix.html cell and its suites (DUT › boot state › package). Safe to
    run again; ConfigError if the run has no allure-results directory."""
    results = run_dir.allure_results
    if not results.is_dir():
        raise ConfigError(f"{run_dir.path} has no allure-results directory")
    write_categories(results)
    write_environment(results, environment_from(run_dir))
    mark_observations(results)
    add_matrix_links(results, Journal(run_dir.journal).latest())
    return results


def render_report(
    run_dir: RunDir, *, history: Path | None, title: str, timeout_s: float = 120
) -> Path:
    """Write `run_dir/report.html` from `run_dir/allure-results/` and return its path.

    Completes the results first (`prepare_results`). `history` is the plan's history file (see
    `history_file`), or None for no trends. Raises ConfigError if allure is not installed
    (the results are complete all the same), InfrastructureError if rendering fails.
    """
    results = prepare_results(run_dir)
    allure = find_allure()
    if history is not None:
        # Allure runs in a temporary directory: a relative path would put the history there
        # (and lose it with the directory), so it is made absolute here.
        history = history.resolve()
        private_dir(history.parent)

    with _stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="harness-allure-") as tmp_name:
        tmp = Path(tmp_name)
        output = tmp / "out"
        config = tmp / "allurerc.mjs"
        config.write_text(
            allure_config(title=title, output=output, history=history), encoding="utf-8"
        )
        argv = [str(allure), "generate", "--config", str(config), str(results.resolve())]
        done = _run(argv, cwd=tmp, timeout_s=timeout_s)
        log = (done.stderr or "") + (done.stdout or "")
        if done.returncode != 0 or TOO_LARGE in log:
            raise InfrastructureError(
                f"allure generate failed (exit code {done.returncode}): {_tail(log)}"
            )
        index = output / "index.html"
        if not index.is_file():
            found = sorted(output.rglob("index.html")) if output.is_dir() else []
            if len(found) != 1:
                raise InfrastructureError(
                    f"allure generate wrote no single index.html under {output}: {_tail(log)}"
                )
            index = found[0]
        target = run_dir.report_html
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(index, staging)
            os.chmod(staging, 0o600)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    return target
