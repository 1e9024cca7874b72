"""`harness run --resume RUN_DIR`: what is left of a run, and whether it may be resumed.

A run may be resumed when RUN_DIR is a run directory whose plan and lab files are unchanged
(their sha256 is in run.json), nothing else is running it (its lock, `run_attempts.py`), and
the processes its last attempt started are gone: a killed controller's pytest child notices
(`pytest_plugin/lifeline.py`) and tears down like after Ctrl-C, and its virtual lab follows
(`virtual_lab/lifeline.py`); `claim` waits for that with a deadline. What is left is every
selected scenario without a final outcome in the journal: no line, or only `not-run`.
A scenario final in the journal but without an Allure result (the run was killed between the
two writes) gets one rebuilt from its journal line (`rebuild_allure_results`).

Every refusal comes before anything is written to the run directory.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from filelock import FileLock

from harness.cli.run_attempts import leftovers, lock_run, wait_gone
from harness.cli.run_support import scenario_tests
from harness.config.lab import Lab, load_lab
from harness.config.plan import Plan, load_plan
from harness.config.scenarios import Scenario, expand
from harness.errors import ConfigError, InfrastructureError
from harness.outcomes import Outcome
from harness.report.journal import Journal
from harness.report.journal_allure import SOURCE_VALUE, rebuild_missing
from harness.report.run_dir import RunDir, RunInfo

#: Seconds beyond the killed attempt's teardown grace that a resume waits for its processes
#: (the lifeline's SIGTERM-to-SIGKILL step, then some slack).
WAIT_MARGIN_S = 45.0


#: What `harness run --resume` with no RUN_DIR stands for: the newest interrupted run.
NEWEST = "@newest-interrupted"


def bare_resume(argv: list[str]) -> list[str]:
    """`harness run --resume` without a value (last, or followed by another option) means the
    newest interrupted run under --reports."""
    args = list(argv)
    if args[:1] == ["run"] and "--resume" in args:
        i = args.index("--resume")
        if i + 1 == len(args) or args[i + 1].startswith("-"):
            args.insert(i + 1, NEWEST)
    return args


def newest_interrupted(reports: Path) -> Path:
    """The newest run under `reports` that never finished (no exit code in its run.json)."""
    found: list[tuple[str, Path]] = []
    for d in reports.iterdir() if reports.is_dir() else ():
        if d.is_symlink() or not (d / "run.json").is_file():
            continue
        try:
            info = RunDir(d).read_info()
        except ConfigError:
            continue
        if info.exit_code is None:
            found.append((info.started, d))
    if not found:
        raise ConfigError(f"--resume: no interrupted run in {reports}")
    return max(found)[1]


@dataclass
class Resumable:
    run_dir: RunDir
    info: RunInfo
    lab: Lab
    plan: Plan
    remaining: list[Scenario]  # in the order of info.scenarios
    totals: dict[str, int]  # the run's scenarios per DUT


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked_file(info: RunInfo, role: str, digest: str) -> Path:
    path = info.resolve(role)
    if not path.is_file():
        raise ConfigError(f"cannot resume run {info.run_id}: its {role} file {path} is gone")
    if not digest:
        raise ConfigError(
            f"cannot resume run {info.run_id}: its run.json has no {role}_sha256 (a run of an "
            f"older harness), so whether {path} changed since is unknown; start a new run"
        )
    if _sha256(path) != digest:
        raise ConfigError(
            f"cannot resume run {info.run_id}: the {role} file {path} changed since the run "
            f"started (sha256 in run.json {digest[:12]}..., now {_sha256(path)[:12]}...); "
            "start a new run"
        )
    return path


def resumable(path: Path) -> Resumable:
    """Check RUN_DIR and find what is left to run; ConfigError (exit 2) names what is wrong."""
    rd = RunDir(path)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a run directory (no such directory)")
    info = rd.read_info()
    plan_file = _checked_file(info, "plan", info.plan_sha256)
    lab_file = _checked_file(info, "lab", info.lab_sha256)
    lab = load_lab(lab_file)
    plan = load_plan(plan_file)
    by_id = {s.id: s for s in expand(plan, lab)}
    unknown = [s for s in info.scenarios if s not in by_id]
    if unknown:
        raise ConfigError(
            f"cannot resume run {info.run_id}: {plan_file} no longer expands to "
            f"{len(unknown)} of its scenarios, e.g. {unknown[0]}"
        )
    latest = Journal(rd.journal).latest()
    remaining = [
        by_id[s] for s in info.scenarios if s not in latest or latest[s].outcome is Outcome.NOT_RUN
    ]
    totals = dict(Counter(by_id[s].dut for s in info.scenarios))
    return Resumable(rd, info, lab, plan, remaining, totals)


def claim(r: Resumable, out: TextIO) -> FileLock:
    """Lock the run and wait for the processes of its last attempt to be gone.

    Raises `run_attempts.RunBusy` if a controller runs it now, InfrastructureError if the old
    processes outlive the deadline (they may still hold DUT leases).
    """
    lock = lock_run(r.run_dir)
    try:
        last = r.info.attempts[-1] if r.info.attempts else {}
        left = leftovers(last)
        if left:
            timeout = float(last.get("grace_s") or 300.0) + WAIT_MARGIN_S
            out.write(
                f"waiting up to {timeout:.0f} s for the processes of attempt "
                f"{last.get('attempt')} to finish tearing down: {', '.join(map(str, left))}\n"
            )
            out.flush()
            left = wait_gone(left, timeout)
        if left:
            raise InfrastructureError(
                f"cannot resume run {r.info.run_id}: the processes of its attempt "
                f"{last.get('attempt')} still run after {timeout:.0f} s: "
                f"{', '.join(map(str, left))}; they may hold DUT leases: stop them and resume again"
            )
        _remove_lab_tempdir(last.get("lab_tempdir"))
    except BaseException:
        lock.release()
        raise
    return lock


def _remove_lab_tempdir(name: object) -> None:
    """The temp directory of a killed attempt's virtual lab (its launcher could not remove it)."""
    if not isinstance(name, str) or not name:
        return
    path = Path(name)
    if path.parent == Path(tempfile.gettempdir()) and path.name.startswith("harness-vlab-"):
        shutil.rmtree(path, ignore_errors=True)


def scenario_test_full_name(plan_path: Path) -> str:
    """The Allure fullName allure-pytest gives the scenario test `harness run` collects for the
    plan: `<module>#<function>` of the first test function taking `planned` in the plan's
    scenario test files, the module dotted from the plan's folder (pytest's rootdir) and empty
    for a file outside it (the packaged module); `journal.jsonl#scenario` if none is found."""
    rootdir = plan_path.resolve().parent
    try:
        files = scenario_tests(plan_path)
    except ConfigError:
        files = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            if node.name.startswith("test") and any(a.arg == "planned" for a in args):
                try:
                    module = ".".join(path.resolve().relative_to(rootdir).with_suffix("").parts)
                except ValueError:
                    module = ""
                return f"{module}#{node.name}"
    return f"{SOURCE_VALUE}#scenario"


def rebuild_allure_results(rd: RunDir, plan: Plan, lab: Lab) -> list[Path]:
    """Rebuild from journal.jsonl the Allure result of each scenario final in the journal that
    has none (harness/report/journal_allure.py); returns the files written."""
    by_id = {s.id: s for s in expand(plan, lab)}
    return rebuild_missing(rd, by_id, full_name=scenario_test_full_name(Path(plan.path)))
