"""The serial console of a running session, served to other terminals and to gdb scripts.

gdb owns the terminal, so QEMU's console is served on a unix socket in the session
directory and logged next to it; ``tinyos-gdb --console`` attaches a terminal to it in raw
mode (Ctrl-] detaches), and ``console_type``/``console_expect`` let a gdb script type into
it and check what it showed.

Example (a gdb script of a tinyos-gdb session)::

    python from gdb_tinyos.launcher.console import console_type; console_type("run forkwrite")
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..core.errors import ConsoleError
from .sessiondir import SessionDirError, live_sessions, sessions_root, valid_name

DETACH_KEY = b"\x1d"  # Ctrl-]


CONSOLE_ENV = "TINYOS_CONSOLE"


PROMPT = "tinyos> "


_POLL_S = 0.03


class ConsoleBridge:
    """Serves a SerialConsole on a unix socket and mirrors its output into a log file.

    Clients get everything printed so far, then live output; what they type reaches the UART."""

    def __init__(self, console, path: Path, log: Path) -> None:
        self.console = console
        self.path = path
        self.log_path = log
        self._clients: list[socket.socket] = []
        self._sent = 0  # transcript characters already broadcast (and logged)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ConsoleBridge:
        self.path.unlink(missing_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(4)
        self._server.settimeout(_POLL_S * 10)
        for target in (self._accept_forever, self._pump_output):
            thread = threading.Thread(target=target, daemon=True, name=f"tinyos-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        if self._server is not None:
            self._server.close()
        self.path.unlink(missing_ok=True)

    def _accept_forever(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                # Exactly what was broadcast so far: the pump sends the rest, nothing twice.
                try:
                    client.sendall(self.console.transcript[: self._sent].encode())
                except OSError:  # the client left at once
                    client.close()
                    continue
                self._clients.append(client)
            threading.Thread(target=self._pump_input, args=(client,), daemon=True).start()

    def _pump_input(self, client: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = client.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
            self.console.send_raw(data)
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close()

    def _pump_output(self) -> None:
        # The transcript only grows; what is new since the last look goes out.
        with open(self.log_path, "w", encoding="utf-8", newline="") as log:
            while True:
                stopping = self._stop.is_set()
                with self._lock:
                    text = self.console.transcript
                    chunk = text[self._sent :]
                    self._sent = len(text)
                    if chunk:
                        self._broadcast(chunk.encode())
                if chunk:
                    log.write(chunk)
                    log.flush()
                if stopping:
                    return
                time.sleep(_POLL_S)

    def _broadcast(self, data: bytes) -> None:
        """Send to every client (called with the lock held); drop the ones that left."""
        for client in list(self._clients):
            try:
                client.sendall(data)
            except OSError:
                self._clients.remove(client)


def _accepts(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(sock))
        except OSError:
            return False
    return True


def find_console(which: str | None) -> Path:
    """The console socket of a running session: ``which`` is a session name or a socket
    path; None picks the only running session (several: ConsoleError naming them)."""
    if which and ("/" in which or which.endswith(".sock")):
        return Path(which)
    root = sessions_root()
    if which:
        sock = root / valid_name(which) / "console.sock"
        if not _accepts(sock):
            raise ConsoleError(f"no running tinyos-gdb session named {which!r} (no live {sock})")
        return sock
    running = [d for d in live_sessions(root) if _accepts(d / "console.sock")]
    if not running:
        raise ConsoleError(f"no running tinyos-gdb session (no live console socket under {root})")
    if len(running) > 1:
        names = ", ".join(d.name for d in running)
        raise ConsoleError(f"{len(running)} sessions are running ({names}): name one, e.g. `tinyos-gdb --console {running[0].name}`")
    return running[0] / "console.sock"


def console_socket(environ: Mapping[str, str] | None = None) -> Path:
    """The console socket of the session gdb runs in ($TINYOS_CONSOLE, set by tinyos-gdb)."""
    path = (os.environ if environ is None else environ).get(CONSOLE_ENV)
    if not path:
        raise ConsoleError(f"${CONSOLE_ENV} is not set: start gdb with tinyos-gdb to have a serial console")
    return Path(path)


def _connect(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError as exc:
        conn.close()
        raise ConsoleError(f"cannot connect to the serial console at {path}: {exc}") from exc
    return conn


def _read_until(conn: socket.socket, done: Callable[[str], bool], timeout: float) -> tuple[bool, str]:
    """Reads (history first, then live output) until ``done(text)``; (reached, text)."""
    deadline = time.monotonic() + timeout
    data = b""
    while not done(data.decode(errors="replace")):
        left = deadline - time.monotonic()
        if left <= 0:
            return False, data.decode(errors="replace")
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return False, data.decode(errors="replace")
        data += chunk
    return True, data.decode(errors="replace")


def console_type(line: str, timeout: float = 60.0, environ: Mapping[str, str] | None = None) -> threading.Thread:
    """Types ``line`` + Enter into the session's console once the shell waits at its prompt.

    Returns at once (the caller then lets the target run, e.g. gdb's ``continue``, which
    blocks until a breakpoint): a thread waits for the prompt and types."""
    conn = _connect(console_socket(environ))

    def type_at_prompt() -> None:
        with conn:
            reached, text = _read_until(conn, lambda text: text.endswith(PROMPT), timeout)
            if reached:
                conn.sendall(line.encode() + b"\r")
            else:
                say(f"the shell did not prompt within {timeout:g} s; {line!r} not typed (console ends: {text[-200:]!r})")

    thread = threading.Thread(target=type_at_prompt, daemon=True, name="tinyos-console-type")
    thread.start()
    return thread


def console_expect(text: str, timeout: float = 10.0, environ: Mapping[str, str] | None = None) -> str:
    """The console output so far, once it contains ``text``; ConsoleError if it does not in time."""
    with _connect(console_socket(environ)) as conn:
        reached, seen = _read_until(conn, lambda seen: text in seen.replace("\r\n", "\n"), timeout)
    if not reached:
        raise ConsoleError(f"the serial console did not show {text!r} within {timeout:g} s (it ends: {seen[-300:]!r})")
    return seen


def attach_console(which: str | None) -> int:
    """Connect this terminal to a session's serial console (``which``: session name or
    socket; default: the only running session) until Ctrl-] or the session ends."""
    import select  # noqa: PLC0415
    import termios  # noqa: PLC0415
    import tty  # noqa: PLC0415

    try:
        path = find_console(which)
    except (ConsoleError, SessionDirError) as exc:
        say(str(exc))
        return 1
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError as exc:
        say(f"cannot connect to {path}: {exc}")
        return 1
    say(f"attached to {path}; Ctrl-] detaches")
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        if saved is not None:
            tty.setraw(stdin)
        while True:
            readable, _, _ = select.select([conn, stdin], [], [])
            if conn in readable:
                data = conn.recv(4096)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if stdin in readable:
                data = os.read(stdin, 1024)
                if not data or DETACH_KEY in data:
                    break
                conn.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        conn.close()
    print()
    say("detached")
    return 0


def say(message: str) -> None:
    print(f"tinyos-gdb: {message}", file=sys.stderr, flush=True)
