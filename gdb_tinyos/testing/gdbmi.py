"""GdbSession: gdb-multiarch driven over GDB/MI through pygdbmi, one command at a time.

Every command goes out with a fresh numeric token and the session reads records until
the ``result`` record carrying that token arrives: completion never depends on a quiet
period or a sleep (pygdbmi's own ``write`` returns on a quiet period, which drops or
splits responses). Asynchronous records that arrive meanwhile (``*stopped``,
``=breakpoint-modified``...) are kept, so ``wait_for_stop`` finds a stop that happened
while another command was being answered.

gdb runs with ``mi-async on``: commands (and ``-exec-interrupt``) are accepted while the
target runs, so the test can type on the serial console and then wait for the stop."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from pygdbmi.gdbcontroller import GdbController

from gdb_tinyos.core import schemas
from gdb_tinyos.core.timeouts import scaled
from gdb_tinyos.testing.errors import GdbCommandError, GdbError, GdbTimeout, UnexpectedStop
from gdb_tinyos.launcher.ports import LOOPBACK
from gdb_tinyos.launcher.processes import close_quietly, stop_process
from gdb_tinyos.launcher.qemu import require_tool

GDB = "gdb-multiarch"
_READ_SLICE_S = 0.5
_TRANSCRIPT_TAIL = 60
_PYTHON_TRACEBACK = "Traceback (most recent call last):"


class MiController(Protocol):
    """What GdbSession needs from pygdbmi's GdbController (a fake in unit tests)."""

    gdb_process: Any

    def write(self, mi_cmd_to_write: str, timeout_sec: float, raise_error_on_timeout: bool, read_response: bool) -> list: ...

    def get_gdb_response(self, timeout_sec: float, raise_error_on_timeout: bool) -> list[dict]: ...


@dataclass
class MiResponse:
    """The answer to one command: its result record and the stream text printed with it."""

    command: str
    message: str  # done, running, connected, exit or error
    payload: dict[str, Any]
    console: str = ""  # console (~"...") and target (@"...") streams - what a CLI command prints
    log: str = ""  # log stream (&"...") - gdb's own diagnostics, Python tracebacks


@dataclass
class Stop:
    """A ``*stopped`` record: why and where the target stopped."""

    payload: dict[str, Any]
    console: str = ""

    @property
    def reason(self) -> str:
        """MI stop reason (``breakpoint-hit``, ``signal-received``...); "" when gdb gives none."""
        return self.payload.get("reason", "")

    @property
    def frame(self) -> dict[str, Any]:
        return self.payload.get("frame", {})

    @property
    def func(self) -> str:
        return self.frame.get("func", "")

    @property
    def addr(self) -> int | None:
        text = self.frame.get("addr")
        return int(text, 16) if text else None

    @property
    def bkptno(self) -> str | None:
        return self.payload.get("bkptno")

    @property
    def signal(self) -> str | None:
        return self.payload.get("signal-name")


def mi_quote(text: str) -> str:
    """``text`` as an MI c-string argument."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def default_gdb_command(gdb: str = GDB, extra_args: Sequence[str] = ()) -> list[str]:
    """gdb-multiarch in MI3 mode without any init file; dies with the test process
    (setpriv --pdeathsig) so a killed runner leaves no gdb behind, and never writes a core
    file into the test's working directory (prlimit --core=0) when gdb itself aborts."""
    argv = [require_tool(gdb, "gdb-multiarch"), "--nx", "--quiet", "--interpreter=mi3", *extra_args]
    prlimit = shutil.which("prlimit")
    if prlimit:
        argv = [prlimit, "--core=0", "--", *argv]
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


@dataclass
class GdbSession:
    """gdb-multiarch under pygdbmi. Use as a context manager: leaving it always ends gdb.

    timeout: default seconds to wait for a command's result or a stop.
    controller_factory: builds the pygdbmi controller from the gdb command line."""

    gdb: str = GDB
    extra_args: Sequence[str] = ()
    timeout: float = 10.0
    controller_factory: Callable[[list[str]], MiController] = field(
        default=lambda argv: GdbController(command=argv, time_to_check_for_additional_output_sec=0.01)
    )
    transcript: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._controller: MiController | None = None
        self._tokens = itertools.count(1)
        self._inbox: deque[dict] = deque()
        self._stops: deque[Stop] = deque()
        self._loose_console: list[str] = []
        self._running = False
        self._register_map: dict[str, int] = {}
        self._pending: dict[int, str] = {}  # token -> command, submitted and not collected
        self._results: dict[int, dict] = {}  # result records that came before their collect

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> GdbSession:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Starts gdb and sets it up for scripting (async MI, no pager, no confirmations)."""
        self._controller = self.controller_factory(default_gdb_command(self.gdb, self.extra_args))
        try:
            self.mi("-gdb-set mi-async on")
            for setting in ("pagination off", "confirm off", "width 0", "height 0"):
                self.mi(f"-gdb-set {setting}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Asks gdb to exit (it detaches from the target), then makes sure it is gone."""
        if self._controller is None:
            return
        process = self._controller.gdb_process
        try:
            if process is not None and process.poll() is None:
                self.mi("-gdb-exit", timeout=3.0)
        except GdbError:
            pass  # gdb is killed below in any case
        finally:
            stop_process(process)
            if process is not None:
                for pipe in (process.stdin, process.stdout, process.stderr):
                    close_quietly(pipe)
            self._controller = None

    @property
    def pid(self) -> int | None:
        """gdb's process id while it runs."""
        if self._controller is None or self._controller.gdb_process is None:
            return None
        return self._controller.gdb_process.pid

    # -- the exchange ---------------------------------------------------------------------

    def execute(self, command: str, timeout: float | None = None) -> MiResponse:
        """Sends one MI command and returns its result record with the stream text that
        came with it. ``^error`` raises GdbCommandError with gdb's message."""
        return self.collect(self.submit(command), timeout)

    def mi(self, command: str, timeout: float | None = None) -> dict[str, Any]:
        """Runs an MI command; returns the result payload ({} when there is none)."""
        return self.execute(command, timeout).payload

    def cli(self, command: str, timeout: float | None = None) -> str:
        """Runs a CLI command (``-interpreter-exec console``); returns what it printed
        (gdb's console stream and the target's, e.g. ``monitor`` replies)."""
        return self.execute(f"-interpreter-exec console {mi_quote(command)}", timeout).console

    def cli_resuming(self, command: str, timeout: float | None = None) -> str:
        """Runs a CLI command that resumes the target itself and ends stopped (``cow-history``
        runs a replay backwards and forwards); returns what it printed.

        gdb answers such a command ``^running`` at its first resume, and its end is no result
        record. A no-op sent right behind it is answered only once it is over (gdb reads
        no input while a command runs), so everything before that answer is the command's;
        its ``^error``, late under the same token, raises GdbCommandError. The stops it made
        are not kept for ``wait_for_stop``."""
        first = self.submit(f"-interpreter-exec console {mi_quote(command)}")
        fence = self.submit("-data-evaluate-expression 0")
        head = self._await(first, timeout)
        if head.message == "running":
            self._pending[first] = command  # its late ^done/^error is still to come
            tail = self._await(fence, timeout)
            late = self._results.pop(first, None)
            self._pending.pop(first, None)
            if late is not None and late.get("message") == "error":
                raise GdbCommandError(command, (late.get("payload") or {}).get("msg", "(no message)"), tail.log)
            console = head.console + tail.console
        else:
            self._await(fence, timeout)
            if head.message == "error":
                raise GdbCommandError(command, head.payload.get("msg", "(no message)"), head.log)
            console = head.console
        self._drain_stops()
        self._running = False
        return console

    def cli_json(self, command: str, timeout: float | None = None) -> Any:
        """Runs a CLI command that prints one JSON document (e.g. ``cow-status --json``); its value,
        checked against the command's documented schema (:mod:`gdb_tinyos.core.schemas`:
        SchemaError naming the first field that departs from it) when it is a plugin command."""
        value = json.loads(self.cli(command, timeout))
        schema = schemas.schema_for(command)
        if schema is not None:
            schemas.validate(value, schema, command.split()[0])
        return value

    def python_value(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluates a Python expression inside gdb (``gdb`` is importable there); its
        value, which must be JSON-encodable, carried back as JSON."""
        out = self.cli(f"python import json; print(json.dumps({expression}))", timeout)
        return json.loads(out.strip().splitlines()[-1])

    def expect_one_line_error(self, command: str, timeout: float = 30.0) -> str:
        """Runs a CLI command that must fail with a one-line message and no Python
        traceback (the plugin's error contract); returns gdb's message, stripped.
        Anything else raises AssertionError: the scenario's expectation failed."""
        try:
            self.cli(command, timeout)
        except GdbCommandError as err:
            message = err.message.strip()
            if "\n" in message:
                raise AssertionError(f"{command}: the error is more than one line: {message!r}") from err
            if "Traceback" in message or "Traceback" in err.log:
                raise AssertionError(f"{command}: the error carries a Python traceback: {err.log or message}") from err
            return message
        raise AssertionError(f"{command}: succeeded, an error was expected")

    def submit(self, command: str) -> int:
        """Sends an MI command without waiting; returns its token for ``collect``.

        Several commands may be in flight at once; each result is kept for its own token.
        Stream text (console/log) goes to whichever ``collect`` is reading when it arrives."""
        token = next(self._tokens)
        self._pending[token] = command
        self._write(f"{token}{command}")
        return token

    def collect(self, token: int, timeout: float | None = None) -> MiResponse:
        """Waits for the result of a submitted command (any order); ``^error`` raises."""
        response = self._await(token, timeout)
        if response.message == "error":
            raise GdbCommandError(response.command, response.payload.get("msg", "(no message)"), response.log)
        return response

    def _await(self, token: int, timeout: float | None) -> MiResponse:
        command = self._pending.get(token)
        if command is None:
            raise GdbError(f"no command with token {token} is waiting for its result.")
        deadline = time.monotonic() + scaled(self.timeout if timeout is None else timeout)
        console: list[str] = []
        log: list[str] = []
        while token not in self._results:
            try:
                record = self._next_record(deadline, f"the result of {command!r}")
            except GdbError:
                del self._pending[token]  # a late result for it is dropped from now on
                raise
            kind = record.get("type")
            if kind == "result" and record.get("token") in self._pending:
                self._results[record["token"]] = record
            elif kind in ("console", "target"):
                # The target stream carries what the remote stub prints, e.g. QEMU's
                # answer to `monitor ...`: part of what the command printed.
                console.append(record.get("payload") or "")
            elif kind in ("log", "output"):
                log.append(record.get("payload") or "")
            else:
                self._keep_async(record)
        record = self._results.pop(token)
        del self._pending[token]
        return MiResponse(command, record.get("message") or "", record.get("payload") or {}, "".join(console), "".join(log))

    def _keep_async(self, record: dict) -> None:
        # A result whose token nobody waits for answers a command whose wait already timed
        # out: it is dropped (kept in the transcript), never taken for a later answer.
        if record.get("type") != "notify":
            return
        if record.get("message") == "running":
            self._running = True
        elif record.get("message") == "stopped":
            self._running = False
            self._stops.append(Stop(record.get("payload") or {}, "".join(self._loose_console)))
            self._loose_console.clear()

    def _absorb_available(self) -> None:
        """Takes in every record gdb has already printed, without waiting."""
        controller = self._live_controller()
        records = controller.get_gdb_response(timeout_sec=0, raise_error_on_timeout=False)
        for record in records:
            self.transcript.append(f"<< {_describe(record)}")
        self._inbox.extend(records)
        while self._inbox:
            record = self._inbox.popleft()
            if record.get("type") == "console":
                self._loose_console.append(record.get("payload") or "")
            else:
                self._keep_async(record)

    def _write(self, line: str) -> None:
        controller = self._live_controller()
        self.transcript.append(f">> {line}")
        try:
            controller.write(line, timeout_sec=scaled(self.timeout), raise_error_on_timeout=False, read_response=False)
        except (BrokenPipeError, ConnectionResetError):  # gdb died first: nothing reads its stdin
            status = controller.gdb_process.poll()
            raise GdbError(self._failure(f"gdb exited with status {status} before {line!r} could be sent")) from None

    def _live_controller(self) -> MiController:
        if self._controller is None:
            raise GdbError("gdb is not running: use GdbSession as a context manager.")
        return self._controller

    def _next_record(self, deadline: float, waiting_for: str) -> dict:
        controller = self._live_controller()
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GdbTimeout(self._failure(f"gdb gave no {waiting_for} in time"))
            records = controller.get_gdb_response(timeout_sec=min(left, _READ_SLICE_S), raise_error_on_timeout=False)
            for record in records:
                self.transcript.append(f"<< {_describe(record)}")
            self._inbox.extend(records)
            if not records and controller.gdb_process is not None and controller.gdb_process.poll() is not None:
                raise GdbError(self._failure(f"gdb exited with status {controller.gdb_process.returncode} while waiting for {waiting_for}"))
        return self._inbox.popleft()

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.transcript[-_TRANSCRIPT_TAIL:])
        return f"{what}; MI transcript (last {_TRANSCRIPT_TAIL} lines):\n{tail}"

    # -- execution control ----------------------------------------------------------------

    def resume(self, timeout: float | None = None) -> None:
        """``-exec-continue`` without waiting for the next stop (see wait_for_stop).

        Stops recorded earlier are dropped: the target was stopped when it was resumed, so
        they cannot be the stop the caller will wait for."""
        self._drain_stops()
        self.mi("-exec-continue", timeout)
        self._running = True

    @property
    def running(self) -> bool:
        """True from a resume until gdb reports the stop (as far as records read so far tell)."""
        return self._running

    def wait_for_stop(self, timeout: float | None = None) -> Stop:
        """Waits for the next ``*stopped`` record (possibly already received)."""
        deadline = time.monotonic() + scaled(self.timeout if timeout is None else timeout)
        while not self._stops:
            record = self._next_record(deadline, "*stopped record (the target is still running)")
            if record.get("type") == "console":
                self._loose_console.append(record.get("payload") or "")
            else:
                self._keep_async(record)
        return self._stops.popleft()

    def continue_and_wait_stop(self, timeout: float | None = None) -> Stop:
        """Continues the target and waits until it stops again."""
        self.resume()
        return self.wait_for_stop(timeout)

    def reverse_continue(self, timeout: float | None = None) -> Stop:
        """Runs backwards (a replay session) until a breakpoint or watchpoint, or the start
        of the recording; that stop."""
        return self._run_and_wait("-exec-continue --reverse", timeout)

    def reverse_stepi(self, timeout: float | None = None) -> Stop:
        """One instruction backwards (a replay session); that stop."""
        return self._run_and_wait("-exec-step-instruction --reverse", timeout)

    def _run_and_wait(self, command: str, timeout: float | None) -> Stop:
        self._drain_stops()
        self.mi(command, timeout)
        self._running = True
        return self.wait_for_stop(timeout)

    def interrupt(self, timeout: float | None = None) -> Stop:
        """Makes sure the target is stopped and returns that stop: the stop gdb already
        reported if it stopped on its own meanwhile, else the one ``-exec-interrupt`` causes."""
        self._absorb_available()
        if not self._stops:
            if not self._running:
                raise GdbError("the target is not running: there is nothing to interrupt.")
            self.mi("-exec-interrupt", timeout)
        return self.wait_for_stop(timeout)

    def break_insert(self, location: str, temporary: bool = False, condition: str = "", hardware: bool = False) -> str:
        """Sets a breakpoint at a linespec (``kernel_main``, ``*0x40080000``...), stopping
        only when ``condition`` (a gdb expression) holds, if given; returns its number.
        ``hardware``: a hardware breakpoint, for code gdb cannot patch now (a user VA not
        mapped at the stop, a kernel VA while the MMU is off)."""
        flags = ("-t " if temporary else "") + ("-h " if hardware else "")
        if condition:
            flags += f"-c {mi_quote(condition)} "
        return self.mi(f"-break-insert {flags}{mi_quote(location)}")["bkpt"]["number"]

    def run_to(
        self,
        location: str,
        timeout: float | None = None,
        action: Callable[[], None] | None = None,
        condition: str = "",
        hardware: bool = False,
    ) -> Stop:
        """Continues until a temporary breakpoint at ``location`` is hit (when ``condition``
        holds, if given) and returns that stop.

        ``action`` runs once the target is running (e.g. typing a shell command that
        reaches ``location``). A running target is interrupted first (gdb cannot insert
        breakpoints into a running remote target). Any other stop raises UnexpectedStop
        (the breakpoint is then removed)."""
        if self._running:
            self.interrupt(timeout)
        number = self.break_insert(location, temporary=True, condition=condition, hardware=hardware)
        self.resume()
        if action is not None:
            action()
        stop = self.wait_for_stop(timeout)
        if stop.reason == "breakpoint-hit" and stop.bkptno == number:
            return stop
        self._delete_breakpoint(number)
        raise UnexpectedStop(f"the target stopped ({stop.reason or 'no reason'} in {stop.func or hex(stop.addr or 0)}) before reaching {location}.", stop.payload)

    def _delete_breakpoint(self, number: str) -> None:
        try:
            self.mi(f"-break-delete {number}")
        except GdbCommandError:
            pass  # already gone: a temporary breakpoint deletes itself when hit

    def _drain_stops(self) -> None:
        self._stops.clear()
        self._loose_console.clear()

    # -- target access --------------------------------------------------------------------

    def file(self, elf: str | Path) -> None:
        """Loads the kernel ELF's symbols (``-file-exec-and-symbols``)."""
        self.mi(f"-file-exec-and-symbols {mi_quote(str(elf))}")

    def connect(self, port: int, host: str = LOOPBACK) -> None:
        """``target remote host:port`` (QEMU's gdbstub); the target is then stopped."""
        self.mi(f"-target-select remote {host}:{port}", timeout=max(self.timeout, 20.0))

    def source(self, path: str | Path) -> str:
        """Loads a gdb script or Python plugin file; returns what it printed.

        gdb answers ``^done`` even when a sourced Python file raises (the traceback only
        goes to the log stream), so a traceback there is turned into GdbCommandError."""
        command = f"-interpreter-exec console {mi_quote(f'source {path}')}"
        response = self.execute(command)
        if _PYTHON_TRACEBACK in response.log:
            last_line = response.log.strip().splitlines()[-1]
            raise GdbCommandError(command, f"loading {path} raised {last_line}", response.log)
        return response.console

    def evaluate(self, expression: str) -> str:
        """gdb's value of an expression, as text."""
        return self.mi(f"-data-evaluate-expression {mi_quote(expression)}")["value"]

    def read_register(self, name: str) -> int:
        """A register's value as an unsigned integer (``pc``, ``cpsr``, ``TTBR1_EL1``...;
        names as gdb lists them). Read by register number in hex, so neither the source
        language (C casts fail in Rust mode) nor gdb's pretty-printing of flags matters."""
        number = self._register_numbers().get(name)
        if number is None:
            raise GdbError(f"gdb knows no register named {name!r}.")
        values = self.mi(f"-data-list-register-values x {number}")["register-values"]
        return int(values[0]["value"], 16)

    def _register_numbers(self) -> dict[str, int]:
        if not self._register_map:
            names = self.mi("-data-list-register-names")["register-names"]
            self._register_map = {name: number for number, name in enumerate(names) if name}
        return self._register_map

    def read_memory(self, address: int | str, length: int) -> bytes:
        """``length`` bytes at a virtual address (``-data-read-memory-bytes``)."""
        where = hex(address) if isinstance(address, int) else address
        payload = self.mi(f"-data-read-memory-bytes {mi_quote(where)} {length}")
        return _join_memory(payload.get("memory", []), length, where)


def _join_memory(blocks: Iterable[dict], length: int, where: str) -> bytes:
    data = bytearray()
    for block in sorted(blocks, key=lambda b: int(b["offset"], 16)):
        if int(block["offset"], 16) != len(data):
            break
        data += bytes.fromhex(block["contents"])
    if len(data) < length:
        raise GdbError(f"only {len(data)} of {length} bytes at {where} could be read.")
    return bytes(data[:length])


def _describe(record: dict) -> str:
    token = record.get("token")
    prefix = f"{token}" if token is not None else ""
    return f"{prefix}{record.get('type')} {record.get('message') or ''} {record.get('payload')!r}"
