"""Property: misuse of the `harness` command line, run in-process through its `main()`, exits 2
with a usage message on stderr; never a traceback, never any other exit code."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.cli.main import main
from tests.property.hostile import PROPERTY

#: Every command (path) and the options it takes, with values that are valid for the option.
COMMANDS: dict[tuple[str, ...], dict[str, list[str]]] = {
    ("expect",): {
        "--build": ["22631", "19045"],
        "--inf": ["0", "2", "absent"],
        "--port": ["external", "exposed"],
        "--session": ["locked", "unlocked"],
        "--kdp": ["on", "off"],
        "--dmaguard": ["absent", "0"],
        "--verifier-dma": ["on", "off"],
    },
    ("inf", "show"): {},
    ("lab", "validate"): {},
    ("lab", "doctor"): {},
    ("plan", "show"): {"--lab": ["lab_config/virtual.yaml"]},
    ("schema",): {},
    ("run",): {"--lab": ["lab_config/virtual.yaml"], "--workers": ["2"], "--scenario": ["x"]},
    ("report",): {"--timeout": ["10"]},
}
TYPED_OPTIONS = {
    ("expect",): {"--build": "not-a-build", "--port": "usb", "--session": "asleep", "--kdp": "2"},
    ("report",): {"--timeout": "0.5"},
}
_token = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=15
)
_unknown_option = st.from_regex(r"--zz[a-z\-]{0,10}", fullmatch=True)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["harness", *argv]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.argv = old_argv
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()


def assert_usage_error(argv: list[str]) -> None:
    code, out, err = run_cli(argv)
    assert code == 2, (argv, code, out, err)
    assert "Traceback" not in out + err, err
    assert err.strip(), f"no message on stderr for {argv}"
    # click's "Usage: ..." with typer's "Error" box, or the harness's own "error: ..."
    assert "Usage:" in err or "Error" in err or "error:" in err, err


@st.composite
def misuse(draw: st.DrawFn) -> list[str]:
    """A command with plausible arguments plus one thing that is wrong."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[command]
    args: list[str] = list(command)
    chosen = (
        draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3)) if options else []
    )
    for name in chosen:
        args += [name, draw(st.sampled_from(options[name]))]
    wrong = draw(st.sampled_from(["unknown", "missing-value", "bad-value"]))
    if wrong == "bad-value" and command in TYPED_OPTIONS:
        name, value = draw(st.sampled_from(sorted(TYPED_OPTIONS[command].items())))
        args += [name, value]
    elif wrong == "missing-value" and options:
        args.append(draw(st.sampled_from(sorted(options))))  # last, with no value
    else:
        position = draw(st.integers(len(command), len(args)))
        args.insert(position, draw(_unknown_option))
    if draw(st.booleans()):
        args += draw(st.lists(_token.filter(lambda t: not t.startswith("-")), max_size=2))
    return args


@PROPERTY
@given(misuse())
@example(["expect", "--build", "abc"])
@example(["run", "--workers"])
@example(["report", "--timeout", "0"])
@example(["lab", "validate", "--zz"])
@example(["plan", "show", "--lab"])
def test_misuse_is_a_usage_error(argv: list[str]) -> None:
    assert_usage_error(argv)


@PROPERTY
@given(st.lists(_token, min_size=1, max_size=4))
def test_random_words_instead_of_a_command(argv: list[str]) -> None:
    if argv[0] in {c[0] for c in COMMANDS} or argv[0] in ("--help", "--version", "-h"):
        argv = ["zz-" + argv[0], *argv[1:]]
    assert_usage_error(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["inf", "show"],  # missing argument
        ["lab", "validate"],
        ["plan", "show"],
        ["run"],
        ["inf", "show", "/no/such/file.inf"],  # a missing file is a usage error too
        ["lab", "validate", "/no/such/lab.yaml"],
        ["plan", "show", "/no/such/plan.yaml"],
        ["run", "/no/such/plan.yaml"],
        ["report", "/no/such/run-dir"],
        ["schema", "nothing"],
        ["expect"],
    ],
)
def test_missing_or_wrong_arguments(argv: list[str]) -> None:
    assert_usage_error(argv)
