"""``tinyos-gdb``: boot a kernel in QEMU, halted, and open gdb-multiarch on it with the plugin.

    tinyos-gdb                          # the shipped kernel, EL1, interactive gdb
    tinyos-gdb --kernel my.elf --el 2   # any kernel ELF, booted at EL2
    tinyos-gdb --batch                  # the scripted walkthrough (gdb_tinyos/walkthrough.gdb), exit status of gdb
    tinyos-gdb --console                # in ANOTHER terminal: the serial console of the running session

The serial console: gdb owns the terminal, so QEMU's console is served on a unix socket
(``/tmp/tinyos-gdb-<uid>/<pid>.sock``) and logged next to it (``<pid>.log``, ``tail -f``
works). ``tinyos-gdb --console`` attaches to the newest session's socket with the terminal in
raw mode (Ctrl-] detaches); everything printed since boot is replayed on attach. gdb gets
the socket's path in ``$TINYOS_CONSOLE``, so a script can type into the console too:
``python from gdb_tinyos.cli import console_type; console_type("run forkwrite")`` types the
line as soon as the shell prompts (the walkthrough does this before each ``continue``), and
``console_expect(text)`` fails unless the console has shown ``text``.

QEMU is started by the harness's :class:`~gdb_tinyos.testing.QemuMachine` (gdbstub on
127.0.0.1, a free port unless ``--port``) and always ended when gdb exits. gdb runs in its
own process group in the terminal's foreground, so Ctrl-C interrupts the guest through gdb
and never kills QEMU.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gdb_tinyos.errors import ConsoleError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
LOADER = PACKAGE_DIR / "gdbinit.py"
WALKTHROUGH = PACKAGE_DIR / "walkthrough.gdb"
SHIPPED_KERNEL = REPO_ROOT / "kernel" / "target" / "aarch64-unknown-none-softfloat" / "release" / "tinyos"
KERNEL_ENV = "TINYOS_KERNEL"
GDB = "gdb-multiarch"
DETACH_KEY = b"\x1d"  # Ctrl-]
CONSOLE_ENV = "TINYOS_CONSOLE"
PROMPT = "tinyos> "
_POLL_S = 0.03


@dataclass(frozen=True)
class KernelChoice:
    """Which kernel ELF the plugin reads, and why that one."""

    path: Path | None
    source: str


def choose_kernel(gdb_file: str | None, environ: Mapping[str, str]) -> KernelChoice:
    """gdb's loaded file wins, then $TINYOS_KERNEL, then the shipped release build."""
    if gdb_file:
        return KernelChoice(Path(gdb_file), "gdb's loaded file")
    if environ.get(KERNEL_ENV):
        return KernelChoice(Path(environ[KERNEL_ENV]), f"${KERNEL_ENV}")
    if SHIPPED_KERNEL.is_file():
        return KernelChoice(SHIPPED_KERNEL, "shipped build")
    return KernelChoice(None, "no ELF loaded, no $TINYOS_KERNEL, no shipped build")


def session_dir() -> Path:
    """Where sessions put their console sockets and logs (private to the user)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"tinyos-gdb-{os.getuid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def gdb_command(
    kernel: Path, port: int, batch: bool, scripts: Sequence[Path], extra: Sequence[str], gdb: str = GDB
) -> list[str]:
    """The gdb-multiarch command line: symbols, plugin, connection, then the user's scripts."""
    argv = [gdb, "-q"] + (["-nx"] if batch else [])
    argv += ["-ex", "set pagination off", "-ex", "set confirm off"] if batch else []
    argv += ["-ex", f"file {kernel}", "-ex", f"source {LOADER}", "-ex", f"target remote 127.0.0.1:{port}"]
    if batch:
        argv.append("-batch")
    for script in scripts:
        argv += ["-x", str(script)]
    return argv + list(extra)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tinyos-gdb",
        description="Boot a TinyOS kernel in QEMU (halted) and debug it with gdb-multiarch and the gdb_tinyos plugin.",
        epilog="Arguments after -- go to gdb. The serial console: run `tinyos-gdb --console` in another terminal.",
    )
    parser.add_argument("--kernel", type=Path, help="kernel ELF (default: $TINYOS_KERNEL, else the shipped release build)")
    parser.add_argument("--el", type=int, choices=(1, 2, 3), default=1, help="exception level at reset (default 1)")
    parser.add_argument("--port", type=int, help="gdbstub port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--batch", action="store_true", help="run the scripted walkthrough non-interactively and exit")
    parser.add_argument("--timeout", type=float, default=120.0, help="--batch only: give up after this many seconds")
    parser.add_argument("-x", dest="scripts", type=Path, action="append", default=[], help="extra gdb script to run")
    parser.add_argument("--console", nargs="?", const="", metavar="SOCKET",
                        help="attach this terminal to a running session's serial console (default: the newest)")
    parser.add_argument("gdb_args", nargs="*", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.console is not None:
        return attach_console(Path(args.console) if args.console else None)
    choice = KernelChoice(args.kernel, "--kernel") if args.kernel else choose_kernel(None, os.environ)
    if choice.path is None or not choice.path.is_file():
        print(f"tinyos-gdb: no kernel ELF ({choice.source}: {choice.path}); build it with scripts/build-kernel "
              "or pass --kernel", file=sys.stderr)
        return 2
    return debug(choice.path.resolve(), args)


def debug(kernel: Path, args: argparse.Namespace) -> int:
    from gdb_tinyos.testing import HarnessError, QemuMachine  # noqa: PLC0415 - only the launcher needs it

    options = {"port_picker": (lambda: args.port), "port_attempts": 1} if args.port else {}
    try:
        with QemuMachine(kernel=kernel, el=args.el, gdb=True, **options) as machine:
            sock = session_dir() / f"{os.getpid()}.sock"
            log = sock.with_suffix(".log")
            with ConsoleBridge(machine.console, sock, log):
                say(f"QEMU pid {machine.pid}, EL{args.el}, gdbstub 127.0.0.1:{machine.gdb_port}, kernel {kernel}")
                if not args.batch:
                    say(f"serial console: `tinyos-gdb --console` in another terminal (log: {log})")
                scripts = ([WALKTHROUGH] if args.batch else []) + args.scripts
                argv = gdb_command(kernel, machine.gdb_port, args.batch, scripts, args.gdb_args)
                env = {**os.environ, CONSOLE_ENV: str(sock)}
                status = run_gdb(argv, timeout=args.timeout if args.batch else None, env=env)
                if args.batch:
                    say("serial console output:\n" + machine.console.transcript.replace("\r\n", "\n").rstrip())
                return status
    except HarnessError as exc:
        say(str(exc))
        return 1


def say(message: str) -> None:
    print(f"tinyos-gdb: {message}", file=sys.stderr, flush=True)


def run_gdb(argv: Sequence[str], timeout: float | None, env: Mapping[str, str] | None = None) -> int:
    """Run gdb as the terminal's foreground job; our own process ignores Ctrl-C meanwhile."""
    tty = _terminal_fd()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(argv, process_group=0 if tty is not None else None, env=env)
        if tty is not None:
            _give_terminal(tty, proc.pid)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"gdb did not finish within {timeout:g} s; ending it")
            proc.kill()
            proc.wait()
            return 124
        finally:
            if tty is not None:
                _give_terminal(tty, os.getpgrp())
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminal_fd() -> int | None:
    try:
        return sys.stdin.fileno() if os.isatty(sys.stdin.fileno()) else None
    except (ValueError, OSError):
        return None


def _give_terminal(fd: int, pgid: int) -> None:
    # A background group calling tcsetpgrp gets SIGTTOU unless it ignores it.
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass  # not our terminal (e.g. stdin redirected): nothing to hand over
    finally:
        signal.signal(signal.SIGTTOU, previous)


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


def newest_console() -> Path | None:
    """The most recently started session's console socket that still accepts connections."""
    for sock in sorted(session_dir().glob("*.sock"), key=lambda p: p.stat().st_mtime, reverse=True):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(sock))
            except OSError:
                continue
        return sock
    return None


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


def attach_console(path: Path | None) -> int:
    """Connect this terminal to a session's serial console until Ctrl-] or the session ends."""
    import select  # noqa: PLC0415
    import termios  # noqa: PLC0415
    import tty  # noqa: PLC0415

    path = path or newest_console()
    if path is None:
        say(f"no running tinyos-gdb session (no live console socket in {session_dir()})")
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


if __name__ == "__main__":
    sys.exit(main())
