"""Atomic output: build a report in a temporary folder beside its target, then swap it in.

A run that fails or is interrupted (an exception, Ctrl-C, SIGTERM turned into an exception by
the CLI) deletes its temporary folder and leaves the previous report untouched. A run killed
outright (SIGKILL, power loss) leaves a hidden ``.<name>.tmp-<pid>-*`` folder that the next run
removes; the visible report is never half-written. The swap itself is one ``renameat2(...,
RENAME_EXCHANGE)`` system call on Linux (both folders exist at every instant); elsewhere two
renames, with the old report restored by the next run if it dies between them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_directory", "atomic_write_text"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux); False if the system call is unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    rc = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(parent: Path, name: str) -> Iterator[tuple[Path, str, int]]:
    for kind in ("tmp", "old"):
        for path in parent.glob(f".{name}.{kind}-*"):
            try:
                pid = int(path.name[len(f".{name}.{kind}-"):].split("-", 1)[0])
            except ValueError:
                continue
            yield path, kind, pid


def _remove(path: Path) -> None:
    """Delete a folder tree, or a file or symbolic link (never following the link)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _recover(parent: Path, name: str) -> None:
    """Restore or delete what a killed run left beside ``parent/name``."""
    target = parent / name
    for path, kind, pid in sorted(_leftovers(parent, name)):
        if pid != os.getpid() and _pid_alive(pid):
            continue  # another run is writing right now
        if kind == "old" and not target.exists():
            os.rename(path, target)  # a run died between the two renames: put it back
        else:
            _remove(path)


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        os.rename(tmp, target)
        return
    if _renameat2_exchange(tmp, target):
        _remove(tmp)  # tmp now holds the previous report
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
    os.rename(target, old)
    os.rename(tmp, target)
    _remove(old)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : path
        The folder to (re)create, e.g. ``reports/gaussian``. Its parent is created if needed.

    Yields
    ------
    pathlib.Path
        A fresh folder beside ``target`` (same file system, so the final rename is atomic).

    Raises
    ------
    NotADirectoryError
        ``target`` exists and is not a folder (a file is never replaced by a folder).

    Notes
    -----
    If the block raises (including ``KeyboardInterrupt``), the temporary folder is deleted
    and ``target`` is left exactly as it was.

    Examples
    --------
    A block that fails leaves the previous folder exactly as it was:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle.report import atomic_directory
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     target = Path(tmp) / "coin"
    ...     with atomic_directory(target) as work:
    ...         _ = (work / "index.html").write_text("first report")
    ...     try:
    ...         with atomic_directory(target) as work:
    ...             _ = (work / "index.html").write_text("half a report")
    ...             raise RuntimeError("the fit failed")
    ...     except RuntimeError:
    ...         pass
    ...     (target / "index.html").read_text(), [p.name for p in Path(tmp).iterdir()]
    ('first report', ['coin'])
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder; it is left as it is.")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    _recover(parent, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle.report import atomic_write_text
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     atomic_write_text(Path(tmp) / "out" / "note.txt", "done")  # creates out/
    ...     (Path(tmp) / "out" / "note.txt").read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
