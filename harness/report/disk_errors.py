"""Writes the reports folder refuses: a full disk, a quota, a file-size limit, a read-only mount.

Both sides of `harness run` use this: pytest (harness.pytest_plugin.reports_disk) stops the run
and exits with `EXIT_REPORTS_DISK` after such a write; the controller turns that (or its own
refused write) into exit 3 with a message instead of a traceback.
"""

from __future__ import annotations

import errno

__all__ = ["DISK_ERRNOS", "EXIT_REPORTS_DISK", "NOTICE_FD_ENV", "disk_error", "is_disk_error"]

#: errno values meaning "the reports folder takes no more writes". EFBIG is a file-size limit
#: (RLIMIT_FSIZE, or a file system's largest file), handled the same way as ENOSPC.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: pytest's exit status when the reports folder refused a write (EX_IOERR of sysexits.h).
EXIT_REPORTS_DISK = 74
#: `harness run` passes its own stderr to pytest as the descriptor this variable names (pytest's
#: output goes to pytest.log, on the reports disk): the plugin's notices reach the user even then.
NOTICE_FD_ENV = "HARNESS_NOTICE_FD"


def disk_error(exc: BaseException | None) -> OSError | None:
    """The refused write in `exc` or what it was raised from (a few links deep), else None."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def is_disk_error(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it was raised from) is a write the reports folder refused."""
    return disk_error(exc) is not None
