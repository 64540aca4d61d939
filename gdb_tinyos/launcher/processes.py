"""Starting and stopping the child processes the harness owns (QEMU, gdb).

Only processes started here are ever signalled, by their own Popen handle: other people's
QEMUs on the same machine are never touched."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from typing import IO

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if the thread that started it dies.

    This is the backstop for a test runner that is itself killed (pytest-timeout, Ctrl-C
    twice, OOM): no context manager runs then, and an orphaned QEMU would keep its port."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stop_process(proc: subprocess.Popen | None, grace: float = 5.0) -> int | None:
    """Ends ``proc`` for sure: SIGTERM, wait ``grace`` seconds, then SIGKILL and reap.

    Returns the exit status (None if there was no process). Safe to call twice."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def close_quietly(pipe: IO[bytes] | None) -> None:
    """Closes a pipe to or from a process that is gone; keystrokes still buffered for a
    dead process make close() raise BrokenPipeError, which means nothing any more here."""
    if pipe is None:
        return
    try:
        pipe.close()
    except BrokenPipeError:
        pass
