"""Private per-session directories: where a session's QEMU RAM file, console socket and
log, and record/replay scratch image live, and from where they all go when it ends.

Layout: ``<runtime>/tinyos-gdb-<uid>/<session name>/`` where ``<runtime>`` is
``$XDG_RUNTIME_DIR``, else ``/dev/shm`` (tmpfs: guest RAM in a file there is never written
back to a disk), else ``/tmp``. Both levels are 0700; a pre-existing one that is not a
directory of ours, or that others can write to, is refused (someone else could plant a
socket or read guest RAM there). Each session directory holds an ``owner`` file (pid and
process start time): a directory whose owner is dead is stale and removed by the next
session that starts (after a SIGKILL no handler of ours runs). Sessions clean up and
claim their directory under a lock on the root, one at a time.

Example::

    with SessionDir.create("demo") as d:     # .../tinyos-gdb-0/demo, 0700
        d.path / "console.sock"
    # removed here
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from types import TracebackType

from .errors import LaunchError

OWNER_FILE = "owner"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SEQUENCE = count(1)


class SessionDirError(LaunchError):
    """A session directory is unsafe, taken, or cannot be made."""


def runtime_base(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR``, else /dev/shm when it exists, else /tmp."""
    env = os.environ if environ is None else environ
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"])
    return Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")


def sessions_root(environ: dict[str, str] | None = None) -> Path:
    """``<runtime>/tinyos-gdb-<uid>``, created 0700, checked private."""
    return private_dir(runtime_base(environ) / f"tinyos-gdb-{os.getuid()}")


def check_private(path: Path) -> None:
    """SessionDirError unless ``path`` is a real directory (not a symlink) owned by us that
    neither group nor others may write to."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise SessionDirError(f"cannot inspect {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SessionDirError(f"{path} is not a directory (refusing to use it)")
    if st.st_uid != os.getuid():
        raise SessionDirError(f"{path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}): refusing to use it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SessionDirError(
            f"{path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}): refusing to use it; "
            f"remove it or `chmod 700 {path}`"
        )


def private_dir(path: Path) -> Path:
    """``path`` as a 0700 directory of ours (made if missing), else SessionDirError."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SessionDirError(f"cannot create {path}: {exc.strerror}") from None
    check_private(path)
    return path


def valid_name(name: str) -> str:
    """A session name usable as one path component, else SessionDirError."""
    if not _NAME.fullmatch(name):
        raise SessionDirError(f"bad session name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _owner(directory: Path) -> tuple[int, str] | None:
    """The owner file's pid and start time; None when it is missing or not whole."""
    try:
        pid_text, started = (directory / OWNER_FILE).read_text().split()
        return int(pid_text), started
    except (OSError, ValueError):
        return None


def _owner_alive(directory: Path) -> bool:
    owner = _owner(directory)
    return owner is not None and _start_time(owner[0]) == owner[1]


def _in_use(directory: Path, grace_s: float = 60.0) -> bool:
    """Whether a session directory belongs to a running session: its owner runs, or it is
    young and not yet claimed (no owner file, or one not readable whole: a session of an
    older version writes it in place, so a reader could see it empty). The owner file is
    read once: read twice, a claim landing between the reads looked like neither."""
    owner = _owner(directory)
    if owner is not None:
        return _start_time(owner[0]) == owner[1]
    try:
        return time.time() - directory.stat().st_mtime < grace_s
    except OSError:
        return False


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock on the sessions' root directory (flock on the directory itself):
    sessions starting at once clean up and claim one after the other."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def clean_stale(root: Path) -> list[Path]:
    """Removes the session directories under ``root`` whose owner process is gone, and
    sockets/logs of the old flat layout (``<pid>.sock``/``<pid>.log``) of dead pids.
    Returns what was removed."""
    removed = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if not _in_use(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        elif entry.suffix in (".sock", ".log") and entry.stem.isdigit() and _start_time(int(entry.stem)) is None:
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def live_sessions(root: Path | None = None) -> Iterator[Path]:
    """Session directories whose owner still runs, newest first."""
    base = root or sessions_root()
    dirs = [d for d in base.iterdir() if d.is_dir() and not d.is_symlink() and _owner_alive(d)]
    yield from sorted(dirs, key=lambda d: (d / OWNER_FILE).stat().st_mtime, reverse=True)


class SessionDir:
    """One session's private directory; removed by :meth:`remove` (or leaving ``with``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str | None = None, root: Path | None = None) -> SessionDir:
        """Makes ``<root>/<name>`` (default name: ``<pid>-<n>``), owned by this process.
        A directory of that name whose owner is dead is replaced; a live one is refused."""
        base = root or sessions_root()
        check_private(base)
        name = valid_name(name) if name is not None else f"{os.getpid()}-{next(_SEQUENCE)}"
        path = base / name
        with _locked(base):  # another session's clean-up never runs between our mkdir and claim
            clean_stale(base)
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                raise SessionDirError(f"a session named {name!r} is running ({path}): choose another name") from None
            except OSError as exc:
                raise SessionDirError(f"cannot create {path}: {exc.strerror}") from None
            check_private(path)
            me = os.getpid()
            # Written aside, then renamed into place: a reader never sees it half-written
            # (an empty owner file once looked like a dead owner).
            claim = path / f".{OWNER_FILE}.{me}"
            claim.write_text(f"{me} {_start_time(me)}\n")
            os.replace(claim, path / OWNER_FILE)
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def console_socket(self) -> Path:
        return self.path / "console.sock"

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"

    def remove(self) -> None:
        """Deletes the directory and everything in it. Safe to call twice."""
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> SessionDir:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()
