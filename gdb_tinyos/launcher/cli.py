"""``tinyos-gdb``: boot a kernel in QEMU, halted, and open gdb-multiarch on it with the plugin.

    tinyos-gdb                          # the shipped kernel, EL1, interactive gdb
    tinyos-gdb --kernel my.elf --el 2   # any kernel ELF, booted at EL2
    tinyos-gdb --batch                  # the scripted walkthrough (gdb_tinyos/walkthrough.gdb), exit status of gdb
    tinyos-gdb --session demo           # name the session (default: <pid>-1)
    tinyos-gdb --record fw.rr           # record the whole run (fw.rr, fw.rr.qcow2, fw.rr.json)
    tinyos-gdb --replay fw.rr           # replay it, halted at reset: reverse-stepi, reverse-continue...
    tinyos-gdb --console [NAME]         # in ANOTHER terminal: the serial console of a running session
    tinyos-gdb --core fork.core         # offline: no QEMU; the read-only commands decode a tinyos-dump core

Each session has a private (0700) directory, ``<runtime>/tinyos-gdb-<uid>/<session>/``
(``<runtime>``: $XDG_RUNTIME_DIR, else /dev/shm, else /tmp), removed when the session ends
and, if the session was killed, by the next one: QEMU's RAM file (unlinked as soon as QEMU
holds it; the plugin maps it to read guest memory at memory speed), the console socket
``console.sock`` and its log ``console.log`` (``tail -f`` works). gdb owns the terminal, so
QEMU's console is served on that socket; ``tinyos-gdb --console NAME`` attaches to it with
the terminal in raw mode (Ctrl-] detaches; no NAME: the only running session); everything
printed since boot is replayed on attach. gdb gets
the socket's path in ``$TINYOS_CONSOLE``, so a script can type into the console too:
``python from gdb_tinyos.launcher.console import console_type; console_type("run forkwrite")`` types the
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
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .console import CONSOLE_ENV, ConsoleBridge, attach_console, say
from .errors import LaunchError
from .kernel import PACKAGE_DIR, KernelChoice, choose_kernel, validate_kernel
from .qemu import QemuMachine

LOADER = PACKAGE_DIR / "gdbinit.py"


WALKTHROUGH = PACKAGE_DIR / "walkthrough.gdb"


GDB = "gdb-multiarch"


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
    rr = parser.add_mutually_exclusive_group()
    rr.add_argument("--record", type=Path, metavar="FILE",
                    help="record the run (console input included) to FILE, FILE.qcow2 and FILE.json")
    rr.add_argument("--replay", type=Path, metavar="FILE",
                    help="replay a recording of the same kernel under gdb, with reverse execution")
    rr.add_argument("--core", type=Path, metavar="FILE",
                    help="no QEMU: gdb on the kernel ELF with the plugin reading FILE, a core written by "
                         "`tinyos-dump` (with its .sysregs.json sidecar); read-only commands only")
    parser.add_argument("--session", metavar="NAME", help="name this session (default: <pid>-1); `--console NAME` finds it")
    parser.add_argument("--console", nargs="?", const="", metavar="NAME",
                        help="attach this terminal to a running session's serial console: its name or socket "
                             "(default: the only running session)")
    parser.add_argument("gdb_args", nargs="*", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _exit_on_signal(signum: int, _frame: object) -> None:
    # SIGTERM/SIGHUP (terminal closed): unwind, so QEMU is ended and the session dir removed.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    if args.console is not None:
        return attach_console(args.console or None)
    choice = KernelChoice(args.kernel, "--kernel") if args.kernel else choose_kernel(None, os.environ)
    if choice.path is None:
        say(f"no kernel ELF ({choice.source}); build it with scripts/build-kernel or pass --kernel")
        return 2
    try:
        kernel = validate_kernel(choice.path)
    except LaunchError as exc:
        say(f"{choice.source}: {exc}")
        return 2
    if args.core is not None:
        return offline(kernel, args)
    return debug(kernel, args)


def offline(kernel: Path, args: argparse.Namespace) -> int:
    """gdb-multiarch on ``kernel`` with the plugin reading the core ``args.core``; no QEMU."""
    core = args.core.resolve()
    if not core.is_file():
        say(f"--core: no file {args.core} (write one with `tinyos-dump FILE` in a live session)")
        return 2
    argv = [GDB, "-q", "-ex", f"file {kernel}", "-ex", f"source {LOADER}", "-ex", f"tinyos-core {gdb_quoted(core)}"]
    for script in args.scripts:
        argv += ["-x", str(script)]
    say(f"offline: kernel {kernel}, core {core} (no QEMU: read-only commands only)")
    return run_gdb(argv + list(args.gdb_args), timeout=None)


def gdb_quoted(path: Path) -> str:
    """``path`` as one argument of a command gdb splits with ``gdb.string_to_argv``."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def debug(kernel: Path, args: argparse.Namespace) -> int:

    options = {"port_picker": (lambda: args.port), "port_attempts": 1} if args.port else {}
    try:
        with QemuMachine(kernel=kernel, el=args.el, gdb=True, session_name=args.session,
                         record=args.record, replay=args.replay, **options) as machine:  # fmt: skip
            assert machine.session is not None
            sock, log = machine.session.console_socket, machine.session.console_log
            with ConsoleBridge(machine.console, sock, log):
                say(f"session {machine.session.name}: QEMU pid {machine.pid}, EL{machine.el}, "
                    f"gdbstub 127.0.0.1:{machine.gdb_port}, kernel {kernel}")
                if args.record:
                    say(f"recording to {machine.recording.path} (+ .qcow2, .json); replay with "
                        f"`tinyos-gdb --replay {args.record}`")
                if args.replay:
                    say(f"replaying {machine.recording.path}: console input is the recorded one; "
                        "reverse-stepi, reverse-continue and watchpoints run backwards")
                if not args.batch:
                    say(f"serial console: `{own_command()} --console {machine.session.name}` in another terminal "
                        f"(socket {sock}, log {log})")
                scripts = ([WALKTHROUGH] if args.batch else []) + args.scripts
                argv = gdb_command(kernel, machine.gdb_port, args.batch, scripts, args.gdb_args)
                env = {**os.environ, CONSOLE_ENV: str(sock)}
                status = run_gdb(argv, timeout=args.timeout if args.batch else None, env=env)
                if args.batch:
                    say("serial console output:\n" + machine.console.transcript.replace("\r\n", "\n").rstrip())
                name, pid = machine.session.name, machine.pid
    except LaunchError as exc:
        say(str(exc))
        return 1
    # gdb's last words were "Inferior 1 ... detached", as if QEMU lived on: it does not
    say(f"session {name} ended: QEMU (pid {pid}) stopped, its files removed")
    return status




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


if __name__ == "__main__":
    sys.exit(main())


def own_command() -> str:
    """How the user runs this program again: ``tinyos-gdb`` when that is on PATH, else the
    path it was started by (./scripts/debug runs it from the project's virtualenv)."""
    started = Path(sys.argv[0]).resolve()
    on_path = shutil.which("tinyos-gdb")
    return "tinyos-gdb" if on_path and Path(on_path).resolve() == started else str(started)
