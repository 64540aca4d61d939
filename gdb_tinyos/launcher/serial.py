"""The kernel's serial console as the test sees it: a reader thread keeps everything QEMU
prints (so QEMU never blocks on a full pipe, also while gdb holds the CPU), and the test
waits for patterns in it with deadlines instead of sleeping.

A read cursor marks what the test has consumed: ``expect`` searches only after it and
moves it past the match, so the same prompt is never matched twice."""

from __future__ import annotations

import codecs
import os
import re
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from gdb_tinyos.core.timeouts import scaled
from gdb_tinyos.launcher.errors import ConsoleClosed, ConsoleTimeout

PROMPT = "tinyos> "
_TAIL_CHARS = 2000


def normalize(text: str) -> str:
    """Serial line ends (CR LF) as Python line ends."""
    return text.replace("\r\n", "\n")


class SerialConsole:
    """Reads ``source`` in the background and writes keystrokes to ``sink``.

    ``describe_owner`` returns a sentence about the process behind the console (e.g. QEMU's
    exit status and stderr); it is added to every failure message."""

    def __init__(
        self,
        source: BinaryIO,
        sink: BinaryIO,
        prompt: str = PROMPT,
        newline: bytes = b"\r",
        describe_owner: Callable[[], str] = lambda: "",
    ):
        self.prompt = prompt
        self.newline = newline
        self.banner: str | None = None
        self._source = source
        self._sink = sink
        self._describe_owner = describe_owner
        self._prompt_re = re.compile(r"(?:\A|(?<=\n))" + re.escape(prompt))
        self._text = ""
        self._pos = 0
        self._eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read_forever, name="tinyos-serial", daemon=True)
        self._thread.start()

    # -- reading --------------------------------------------------------------------------

    def _read_forever(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = self._source.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if chunk:
                    self._text += decoder.decode(chunk)
                else:
                    self._text += decoder.decode(b"", final=True)
                    self._eof = True
                self._cond.notify_all()
            if not chunk:
                return

    @property
    def transcript(self) -> str:
        """Everything the console has shown so far, raw (CR LF line ends)."""
        with self._cond:
            return self._text

    @property
    def closed(self) -> bool:
        """True once QEMU closed the console (it exited)."""
        with self._cond:
            return self._eof

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Waits until ``pattern`` appears after the cursor; moves the cursor past it.

        The match is against the raw text (CR LF line ends). Raises ConsoleTimeout or,
        if QEMU exits first, ConsoleClosed; both carry the console's last output."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while True:
                match = regex.search(self._text, self._pos)
                if match:
                    self._pos = match.end()
                    return match
                if self._eof:
                    raise ConsoleClosed(self._failure(f"the console closed before {regex.pattern!r} appeared"))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConsoleTimeout(self._failure(f"{regex.pattern!r} did not appear within {timeout:g} s"))
                self._cond.wait(left)

    def read_until_prompt(self, timeout: float = 10.0) -> str:
        """The text from the cursor up to the next prompt (CR LF -> LF); cursor after it."""
        with self._cond:
            start = self._pos
        match = self.expect(self._prompt_re, timeout)
        return normalize(match.string[start : match.start()])

    def wait_for_prompt(self, timeout: float = 30.0) -> str:
        """Waits for the first prompt after boot and returns the banner (all text before it).

        Idempotent: once the banner is known it is returned at once."""
        if self.banner is None:
            self.banner = self.read_until_prompt(timeout)
        return self.banner

    # -- writing --------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Writes bytes to the UART exactly as given (control characters included)."""
        try:
            self._sink.write(data)
            self._sink.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ConsoleClosed(self._failure(f"cannot type {data!r}: the console is closed ({exc})")) from exc

    def send_line(self, text: str) -> None:
        """Types ``text`` and presses Enter (CR, as a terminal sends it)."""
        self.send_raw(text.encode() + self.newline)

    def command(self, cmd: str, timeout: float = 10.0) -> str:
        """Runs a shell command and returns its output: the text between the echoed command
        line and the next prompt, with LF line ends. Expects to be at the prompt."""
        if "\n" in cmd or "\r" in cmd:
            raise ValueError(f"a shell command is one line, got {cmd!r}")
        self.send_line(cmd)
        self.expect(re.compile(re.escape(cmd) + r"\r?\n"), timeout)
        return self.read_until_prompt(timeout)

    # -- diagnostics ----------------------------------------------------------------------

    def _failure(self, what: str) -> str:
        # Called with the lock held: reads the buffer directly.
        tail = self._text[-_TAIL_CHARS:]
        owner = self._describe_owner()
        return f"{what}; console output (last {len(tail)} chars):\n{tail}" + (f"\n{owner}" if owner else "")

    def join_reader(self, timeout: float = 5.0) -> None:
        """Waits for the reader thread to see end-of-file (after QEMU exited)."""
        self._thread.join(timeout)
