"""`python -m harness.virtual_lab LAB --endpoints-file PATH [--workdir DIR]`: run a virtual lab.

The same foreground run as `harness lab up` (see `foreground.py`); the launcher starts it as a
child process. `--ready-fd N` (for the launcher) names an inherited pipe that gets one line
once the endpoints file is written. The password of every DUT comes from
HARNESS_VIRTUAL_PASSWORD if set, else each DUT gets a generated one.

Exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad lab file, 3 the lab could not start.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from harness.config.lab import load_lab
from harness.errors import ConfigError
from harness.virtual_lab.foreground import PASSWORD_ENV, serve
from harness.virtual_lab.lifeline import watch_lifeline

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.virtual_lab", description=__doc__)
    parser.add_argument("lab", type=Path, help="the lab YAML file (with a 'virtual:' section)")
    parser.add_argument("--endpoints-file", type=Path, help="write the endpoints JSON here (0600)")
    parser.add_argument("--workdir", type=Path, help="keep keys and certificates here")
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lifeline-fd", type=int, help=argparse.SUPPRESS)  # see lifeline.py
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        lab = load_lab(args.lab)
        if lab.virtual is None:
            raise ConfigError("the lab has no 'virtual:' section", path=str(args.lab))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.lifeline_fd is not None:
        watch_lifeline(args.lifeline_fd)
    return serve(
        lab,
        endpoints_file=args.endpoints_file,
        workdir=args.workdir,
        password=os.environ.get(PASSWORD_ENV) or None,
        ready_fd=args.ready_fd,
        echo=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    sys.exit(main())
