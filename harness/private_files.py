"""Files and directories only their owner can read: 0700 directories, 0600 files, whatever the
umask, and files replaced atomically (a temp file in the same directory, fsync, `os.replace`).

Used for everything that may hold a secret or a lab's private state: the virtual lab's endpoints
file (per-run passwords, the control token), run directories under `reports/` and the files the
harness writes there, lease files, transcripts and logs.

>>> import tempfile, pathlib, stat
>>> d = private_dir(pathlib.Path(tempfile.mkdtemp()) / "run")
>>> write_private(d / "run.json", '{"ok": true}\\n')
>>> oct(stat.S_IMODE((d / "run.json").stat().st_mode)), oct(stat.S_IMODE(d.stat().st_mode))
('0o600', '0o700')

On Windows the modes are ignored by the OS (NTFS ACLs of the user's profile apply instead);
the calls still succeed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "append_private",
    "open_private",
    "private_dir",
    "write_private",
]


def private_dir(path: str | Path, *, parents: bool = True) -> Path:
    """Create `path` (and missing parents) if needed; `path` itself ends up mode 0700.

    Parents that did not exist are created 0700 too; existing parents are left alone (e.g.
    `reports/` or the temp directory). Returns `path` as a Path.
    """
    path = Path(path)
    if parents and not path.parent.exists():
        private_dir(path.parent, parents=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask; an existing dir is fixed too
    return path


def write_private(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace `path` atomically with `data`, mode 0600; its directory is created 0700 if missing.

    Readers see the old content or the new, never a torn file; the data is fsynced before the
    rename. A failure leaves no temp file behind.
    """
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        try:
            _fchmod(fd)
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def append_private(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Append `data` in one `write` (O_APPEND) and fsync; the file is created or kept 0600."""
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd = os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), FILE_MODE
    )
    try:
        _fchmod(fd)
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)


def open_private(path: str | Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """`open(path, mode)` for a log or transcript that grows: created (or kept) 0600.

    `mode` is one of w/a/x with optional b/t and +; e.g. `with open_private(log, "wb") as f:`.
    """
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    kind = mode.replace("b", "").replace("t", "").replace("+", "")
    flags = {
        "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    }.get(kind)
    if flags is None:
        raise ValueError(f"open_private: mode {mode!r} does not create a file (use w, a or x)")
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0), FILE_MODE)
    try:
        _fchmod(fd)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def _fchmod(fd: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, FILE_MODE)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); not possible or needed on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
