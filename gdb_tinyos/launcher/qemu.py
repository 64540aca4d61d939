"""QemuMachine: one QEMU virt board running a kernel ELF, with its serial console on
QEMU's stdio pipes and, optionally, its gdbstub on a free loopback port.

    with QemuMachine(kernel=kernel_path(), el=1) as m:
        print(m.console.banner)
        print(m.console.command("mem"))

Leaving the ``with`` block always ends QEMU (SIGTERM, then SIGKILL) and closes its pipes,
also when the block raises; QEMU is additionally tied to the starting thread's life
(PR_SET_PDEATHSIG), so a killed test runner leaves no QEMU behind.

Guest RAM is a shared file (``shared_ram``, on by default) so a debugger on this host can
map it and read guest memory at memory speed (gdb_tinyos.core.hostmem): QEMU creates it in
the machine's private session directory (:mod:`~gdb_tinyos.launcher.sessiondir`) and it is
unlinked as soon as QEMU holds it open -- the memory lives exactly as long as QEMU and
whoever mapped it, whatever crashes. The session directory goes when the machine closes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from gdb_tinyos.core.hostmem import descriptor_of
from gdb_tinyos.core.timeouts import scaled
from gdb_tinyos.launcher.serial import PROMPT, SerialConsole
from gdb_tinyos.launcher.errors import QemuStartError, ToolMissing
from gdb_tinyos.launcher.ports import LOOPBACK, free_port, process_listens_on
from gdb_tinyos.launcher.processes import close_quietly, die_with_parent, stop_process
from gdb_tinyos.launcher.record import Recording, RecordingError
from gdb_tinyos.launcher.sessiondir import SessionDir

QEMU = "qemu-system-aarch64"
_MACHINE_BY_EL = {1: "virt", 2: "virt,virtualization=on", 3: "virt,secure=on"}
_PORT_TAKEN = "Address already in use"
_POLL_S = 0.02


def require_tool(name: str, package: str) -> str:
    """The absolute path of an executable, or ToolMissing naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed: run ./scripts/test, which installs the Debian package {package}.")
    return path


class QemuMachine:
    """A QEMU ``virt`` board (cortex-a72) booting ``kernel``.

    el: exception level at reset, 1 (default), 2 (virtualization=on) or 3 (secure=on).
    gdb: open the gdbstub on 127.0.0.1:<free port> (``gdb_port``); the CPU is then halted
         at the first instruction (``-S``) unless ``start_running``.
    wait_for_prompt: when the CPU runs from the start, entering the ``with`` block waits
         for the first prompt (``console.banner`` is then set).
    port_picker: where gdbstub ports come from; a port QEMU finds taken is replaced by the
         next one (up to ``port_attempts`` tries).
    prompt: the shell prompt the console waits for (a kernel of your own may differ).
    shared_ram: back guest RAM with a shared file (unlinked once QEMU has it open) that a
         debugger on this host may map (default on).
    session: the private directory for the RAM file and other session files; default: a
         new one (``session_name`` or ``<pid>-<n>``), removed when the machine closes.
    record: record the whole run to this file (:mod:`~gdb_tinyos.launcher.record`: also
         ``FILE.qcow2`` and ``FILE.json``); what is typed on the console is recorded too.
    replay: replay a recording instead of running freely: the kernel must be the recorded
         one; exception level, RAM size and backend are taken from the recording; console
         input is the recorded one. With ``gdb``, reverse execution is available.
    """

    def __init__(
        self,
        kernel: str | os.PathLike[str],
        el: int = 1,
        gdb: bool = False,
        start_running: bool = False,
        wait_for_prompt: bool = True,
        boot_timeout: float = 30.0,
        memory: str = "128M",
        extra_args: Sequence[str] = (),
        qemu: str = QEMU,
        port_picker: Callable[[], int] = free_port,
        port_attempts: int = 5,
        prompt: str = PROMPT,
        shared_ram: bool = True,
        session: SessionDir | None = None,
        session_name: str | None = None,
        record: str | os.PathLike[str] | None = None,
        replay: str | os.PathLike[str] | None = None,
    ):
        if record is not None and replay is not None:
            raise ValueError("record and replay exclude each other")
        if el not in _MACHINE_BY_EL:
            raise ValueError(f"el must be 1, 2 or 3, not {el!r}")
        self.kernel = Path(kernel)
        self.el = el
        self.gdb = gdb
        self.start_running = start_running or not gdb
        self.wait_for_prompt = wait_for_prompt
        self.boot_timeout = boot_timeout
        self.memory = memory
        self.extra_args = list(extra_args)
        self.qemu = qemu
        self.port_picker = port_picker
        self.port_attempts = port_attempts
        self.prompt = prompt
        self.shared_ram = shared_ram
        self.session = session
        self.session_name = session_name
        self._owns_session = session is None
        self.record = Path(record) if record is not None else None
        self.replay = Path(replay) if replay is not None else None
        self.recording: Recording | None = None
        self._rr_args: list[str] = []
        self.gdb_port: int | None = None
        self.argv: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._console: SerialConsole | None = None
        self._stderr: IO[bytes] | None = None

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> QemuMachine:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Starts QEMU (retrying taken gdbstub ports) and, if asked, waits for the prompt.
        On any failure QEMU is stopped again before the exception propagates."""
        qemu = require_tool(self.qemu, "qemu-system-arm")
        if not self.kernel.is_file():
            raise ToolMissing(f"the kernel ELF {self.kernel} does not exist: build it with scripts/build-kernel.")
        try:
            if self.session is None:
                self.session = SessionDir.create(self.session_name)
            self._prepare_record_replay()
            self._launch_until_port_is_ours(qemu)
            if self.start_running and self.wait_for_prompt:
                self.console.wait_for_prompt(self.boot_timeout)
        except BaseException:
            self.close()
            raise

    def _launch_until_port_is_ours(self, qemu: str) -> None:
        for attempt in range(1, self.port_attempts + 1):
            port = self.port_picker() if self.gdb else None
            self._launch(qemu, port)
            if self.shared_ram:
                self._unlink_ram_once_open()
            if port is None or self._gdbstub_listens(port):
                self.gdb_port = port
                return
            stderr = self.stderr_text()
            self._discard_process()
            if _PORT_TAKEN not in stderr or attempt == self.port_attempts:
                raise QemuStartError(f"QEMU did not start ({' '.join(self.argv)}): {stderr.strip() or 'no message'}")

    def _launch(self, qemu: str, port: int | None) -> None:
        machine = _MACHINE_BY_EL[self.el] + (",memory-backend=ram" if self.shared_ram else "")
        self.argv = [
            qemu, "-M", machine, "-cpu", "cortex-a72", "-m", self.memory,
            "-nographic", "-nic", "none", "-no-reboot",
            # The console on stdio without the monitor mux: no Ctrl-A escape handling, so
            # every byte the test types reaches the UART.
            "-serial", "stdio", "-monitor", "none",
            "-kernel", str(self.kernel),
        ]  # fmt: skip
        if self.shared_ram:
            self.argv += ["-object", f"memory-backend-file,id=ram,size={self.memory},mem-path={self.ram_path},share=on"]
        if port is not None:
            self.argv += ["-gdb", f"tcp:{LOOPBACK}:{port}"]
            if not self.start_running:
                self.argv.append("-S")
        self.argv += self._rr_args + self.extra_args
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._console = SerialConsole(self.proc.stdout, self.proc.stdin, prompt=self.prompt, describe_owner=self.describe)

    def _prepare_record_replay(self) -> None:
        assert self.session is not None
        if self.record is not None:
            self.recording = Recording.create(self.record, self.kernel, self.el, self.memory, self.shared_ram)
            self._rr_args = self.recording.qemu_args("record", self.recording.image)
        elif self.replay is not None:
            self.recording = Recording.open(self.replay)
            self.recording.check_kernel(self.kernel)
            if self.recording.el not in _MACHINE_BY_EL:
                raise RecordingError(f"{self.recording.sidecar}: exception level {self.recording.el} is not 1, 2 or 3")
            # The snapshot holds this machine's devices and RAM blocks: same board, or no replay.
            self.el, self.memory, self.shared_ram = self.recording.el, self.recording.memory, self.recording.shared_ram
            self._rr_args = self.recording.qemu_args("replay", self.recording.replay_image(self.session.path))

    @property
    def ram_path(self) -> Path:
        """Where QEMU creates its RAM file (gone once QEMU holds it open)."""
        assert self.session is not None
        return self.session.path / "ram"

    def _unlink_ram_once_open(self, timeout: float = 10.0) -> None:
        """Unlinks the RAM file as soon as QEMU holds a descriptor on it: from then on it
        exists only while QEMU (and any debugger that mapped it) does."""
        assert self.proc is not None
        deadline = time.monotonic() + scaled(timeout)
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                st = os.stat(self.ram_path)
            except FileNotFoundError:
                time.sleep(_POLL_S)
                continue
            if descriptor_of(self.proc.pid, (os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino) is not None:
                self.ram_path.unlink()
                return
            time.sleep(_POLL_S)
        self.ram_path.unlink(missing_ok=True)  # QEMU exited (or hangs): its error tells why

    def _gdbstub_listens(self, port: int, timeout: float = 10.0) -> bool:
        """Waits until QEMU itself listens on ``port`` (True) or exits (False)."""
        assert self.proc is not None
        deadline = time.monotonic() + scaled(timeout)
        while self.proc.poll() is None:
            if process_listens_on(self.proc.pid, port):
                return True
            if time.monotonic() > deadline:
                raise QemuStartError(f"QEMU (pid {self.proc.pid}) did not open its gdbstub on port {port} within {timeout:g} s.")
            time.sleep(_POLL_S)
        return False

    def _discard_process(self) -> None:
        stop_process(self.proc)
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                close_quietly(pipe)
        if self._console is not None:
            self._console.join_reader()
        if self._stderr is not None:
            self._stderr.close()
        self.proc = None
        self._stderr = None

    def close(self) -> None:
        """Ends QEMU, closes its pipes and removes the session directory it created. Safe
        to call more than once."""
        self._discard_process()
        if self._owns_session and self.session is not None:
            self.session.remove()
            self.session = None

    # -- state ----------------------------------------------------------------------------

    @property
    def console(self) -> SerialConsole:
        """The serial console (PL011 UART) of the running machine."""
        if self._console is None:
            raise QemuStartError("QEMU has not been started: use QemuMachine as a context manager.")
        return self._console

    @property
    def pid(self) -> int | None:
        """QEMU's process id while it runs (None before start and after close)."""
        return self.proc.pid if self.proc is not None else None

    def stderr_text(self) -> str:
        """What QEMU wrote to stderr so far."""
        if self._stderr is None:
            return ""
        # pread: QEMU shares this file's offset, so reading must not move it.
        fd = self._stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def describe(self) -> str:
        """One sentence on QEMU's state for failure messages."""
        if self.proc is None:
            return "QEMU is not running."
        status = self.proc.poll()
        if status is None and self._console is not None and self._console.closed:
            # The console closes as QEMU exits: give the exit a moment to be reaped.
            try:
                status = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        state = "QEMU is running" if status is None else f"QEMU exited with status {status}"
        stderr = self.stderr_text().strip()
        return f"{state} (pid {self.proc.pid}, {' '.join(self.argv)})" + (f"; its stderr: {stderr}" if stderr else ".")
