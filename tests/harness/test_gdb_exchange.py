"""GdbSession's token matching, on scripted MI record sequences (no gdb needed): the
order and shape of the records follow what gdb-multiarch 13 prints (seen in the
transcripts of the live tests)."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable

import pytest

from gdb_tinyos.core.schemas import SchemaError
from gdb_tinyos.testing import GdbCommandError, GdbError, GdbSession, GdbTimeout

Batch = list[dict]


def result(token: int | None, message: str = "done", payload: dict | None = None) -> dict:
    return {"type": "result", "message": message, "payload": payload, "token": token, "stream": "stdout"}


def console(text: str) -> dict:
    return {"type": "console", "message": None, "payload": text, "stream": "stdout"}


def notify(message: str, payload: dict | None = None) -> dict:
    return {"type": "notify", "message": message, "payload": payload, "token": None, "stream": "stdout"}


def stopped(reason: str, func: str) -> dict:
    return notify("stopped", {"reason": reason, "frame": {"addr": "0x40080010", "func": func}})


class FakeProcess:
    pid = 4242
    stdin = stdout = stderr = None

    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = -15

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


class FakeController:
    """Answers each written command with the batches ``script(token, command)`` returns;
    get_gdb_response hands out one batch per call, like one read from gdb's pipe."""

    def __init__(self, script: Callable[[int, str], list[Batch]]):
        self.script = script
        self.batches: deque[Batch] = deque()
        self.written: list[str] = []
        self.gdb_process = FakeProcess()

    def write(self, line: str, timeout_sec: float, raise_error_on_timeout: bool, read_response: bool) -> list:
        self.written.append(line)
        token, command = re.fullmatch(r"(\d+)(.*)", line).groups()
        self.batches.extend(self.script(int(token), command))
        return []

    def get_gdb_response(self, timeout_sec: float, raise_error_on_timeout: bool) -> Batch:
        if self.batches:
            return self.batches.popleft()
        time.sleep(min(timeout_sec, 0.01))
        return []


def session_with(script: Callable[[int, str], list[Batch] | None], timeout: float = 2.0) -> tuple[GdbSession, FakeController]:
    """A started GdbSession on a FakeController; commands the script leaves alone
    (returns None for) get a plain ^done."""
    holder: list[FakeController] = []

    def answer(token: int, command: str) -> list[Batch]:
        batches = script(token, command)
        return [[result(token)]] if batches is None else batches

    def factory(argv: list[str]) -> FakeController:
        holder.append(FakeController(answer))
        return holder[0]

    session = GdbSession(timeout=timeout, controller_factory=factory)
    session.start()
    return session, holder[0]


def test_result_is_matched_by_token_past_stale_results_and_async_records():
    def script(token: int, command: str):
        if command == "-data-evaluate-expression \"6*7\"":
            return [
                [result(token - 1, payload={"value": "stale"}), notify("running", {"thread-id": "all"})],
                [console("\nBreakpoint 1, "), console("handler ()\n"), stopped("breakpoint-hit", "handler")],
                [result(token + 1000, payload={"value": "foreign"}), result(token, payload={"value": "42"})],
            ]
        return None

    session, _ = session_with(script)
    assert session.evaluate("6*7") == "42"
    # The stop that arrived meanwhile is kept for wait_for_stop.
    stop = session.wait_for_stop(timeout=0.5)
    assert (stop.reason, stop.func, stop.addr) == ("breakpoint-hit", "handler", 0x40080010)


def test_records_after_the_result_stay_for_the_next_wait():
    def script(token: int, command: str):
        if command == "-exec-continue":
            # One read returns the ^running, the *running and the later *stopped together.
            return [[result(token, "running"), notify("running"), console("stop text\n"), stopped("signal-received", "idle")]]
        return None

    session, _ = session_with(script)
    session.resume()
    assert session.running
    stop = session.wait_for_stop(timeout=0.5)
    assert (stop.reason, stop.console) == ("signal-received", "stop text\n")
    assert not session.running


def test_cli_returns_the_console_stream_joined():
    def script(token: int, command: str):
        if command.startswith("-interpreter-exec console"):
            return [[console("pc    0x4008")], [console("0000\n"), result(token)]]
        return None

    session, controller = session_with(script)
    assert session.cli('info registers "pc"') == "pc    0x40080000\n"
    assert controller.written[-1].endswith('-interpreter-exec console "info registers \\"pc\\""')


def target(text: str) -> dict:
    return {"type": "target", "message": None, "payload": text, "stream": "stdout"}


def error(token: int, message: str) -> dict:
    return result(token, "error", {"msg": message})


def test_cli_includes_the_target_stream_monitor_replies_come_on():
    def script(token: int, command: str):
        if command.startswith("-interpreter-exec console"):
            return [[target("gpa: 0x40080000\r\n"), result(token)]]
        return None

    session, _ = session_with(script)
    assert session.cli("monitor gva2gpa 0xffff000040080000") == "gpa: 0x40080000\r\n"


def test_json_and_python_values_are_decoded():
    def script(token: int, command: str):
        if "--json" in command:
            return [[console('{"total_cow_pages": 7}\n'), result(token)]]
        if "python import json" in command:
            return [[console("noise\n"), console("[1, 2]\n"), result(token)]]
        return None

    session, controller = session_with(script)
    assert session.cli_json("my-own-command --json") == {"total_cow_pages": 7}
    assert session.python_value("[1, 1 + 1]") == [1, 2]
    assert "print(json.dumps([1, 1 + 1]))" in controller.written[-1]
    # a plugin command's JSON is held to its documented schema (gdb_tinyos/core/schemas.py)
    with pytest.raises(SchemaError, match=r"^cow-stats: fields missing \['capacity', 'checks',"):
        session.cli_json("cow-stats --json")


def test_expect_one_line_error_returns_the_message_or_says_what_was_wrong():
    def script(token: int, command: str):
        if "one-line" in command:
            return [[error(token, "cow-status: the target is running\n")]]
        if "two-lines" in command:
            return [[error(token, "first\nsecond")]]
        if "traceback" in command:
            log = {"type": "log", "message": None, "payload": "Traceback (most recent call last):\n", "stream": "stdout"}
            return [[log, error(token, "boom")]]
        return None

    session, _ = session_with(script)
    assert session.expect_one_line_error("one-line") == "cow-status: the target is running"
    with pytest.raises(AssertionError, match="more than one line"):
        session.expect_one_line_error("two-lines")
    with pytest.raises(AssertionError, match="traceback"):
        session.expect_one_line_error("traceback")
    with pytest.raises(AssertionError, match="succeeded, an error was expected"):
        session.expect_one_line_error("print 1")


def test_run_to_with_a_condition_inserts_a_conditional_temporary_breakpoint():
    def script(token: int, command: str):
        if command.startswith("-break-insert"):
            return [[result(token, payload={"bkpt": {"number": "3"}})]]
        if command == "-exec-continue":
            return [[result(token, "running"), notify("running"),
                     notify("stopped", {"reason": "breakpoint-hit", "bkptno": "3", "frame": {"func": "hook"}})]]
        return None

    session, controller = session_with(script)
    stop = session.run_to("*hook", condition="($x0 & 0xffffffff) == 1")
    assert stop.func == "hook"
    assert any(line.endswith('-break-insert -t -c "($x0 & 0xffffffff) == 1" "*hook"') for line in controller.written)


def test_error_result_raises_with_gdbs_message_and_log():
    def script(token: int, command: str):
        if command == "-frobnicate":
            log = {"type": "log", "message": None, "payload": "Traceback: boom\n", "stream": "stdout"}
            return [[log, result(token, "error", {"msg": "Undefined MI command: frobnicate", "code": "undefined-command"})]]
        return None

    session, _ = session_with(script)
    with pytest.raises(GdbCommandError) as info:
        session.mi("-frobnicate")
    assert info.value.message == "Undefined MI command: frobnicate"
    assert info.value.command == "-frobnicate"
    assert info.value.log == "Traceback: boom\n"


def test_missing_result_times_out_with_the_transcript():
    session, _ = session_with(lambda token, command: [] if command == "-hang" else None)
    started = time.monotonic()
    with pytest.raises(GdbTimeout) as info:
        session.mi("-hang", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert re.search(r">> \d+-hang", str(info.value))


def test_late_result_of_a_timed_out_command_is_not_taken_for_the_next_one():
    late: list[int] = []

    def script(token: int, command: str):
        if command == "-slow":
            late.append(token)
            return []
        if command == "-fast":
            return [[result(late[0], payload={"value": "slow"})], [result(token, payload={"value": "fast"})]]
        return None

    session, _ = session_with(script)
    with pytest.raises(GdbTimeout):
        session.mi("-slow", timeout=0.1)
    assert session.mi("-fast") == {"value": "fast"}


def test_dead_gdb_is_reported_at_once_not_after_the_timeout():
    session, controller = session_with(lambda token, command: [] if command == "-anything" else None, timeout=30)
    controller.gdb_process.returncode = 1
    started = time.monotonic()
    with pytest.raises(GdbError, match="gdb exited with status 1"):
        session.mi("-anything")
    assert time.monotonic() - started < 5


def test_interrupt_returns_a_stop_that_already_happened_without_interrupting():
    def script(token: int, command: str):
        if command == "-exec-continue":
            return [[result(token, "running")], [stopped("breakpoint-hit", "handler")]]
        return None

    session, controller = session_with(script)
    session.resume()
    stop = session.interrupt(timeout=0.5)
    assert stop.func == "handler"
    assert not any(line.endswith("-exec-interrupt") for line in controller.written)


def test_close_sends_gdb_exit_and_ends_the_process():
    session, controller = session_with(lambda token, command: [[result(token, "exit")]] if command == "-gdb-exit" else None)
    process = controller.gdb_process
    session.close()
    assert controller.written[-1].endswith("-gdb-exit")
    assert process.returncode is not None
    assert session.pid is None


def test_submitted_commands_are_collected_in_any_order():
    def script(token: int, command: str):
        if command == "-second":
            # Both answers arrive together, the first command's answer last.
            return [[result(token, payload={"value": "2"}), console("x\n"), result(token - 1, payload={"value": "1"})]]
        if command == "-first":
            return []
        return None

    session, _ = session_with(script)
    first = session.submit("-first")
    second = session.submit("-second")
    assert session.collect(second).payload == {"value": "2"}
    assert session.collect(first).payload == {"value": "1"}
    with pytest.raises(GdbError, match="no command with token"):
        session.collect(first)


def test_missing_gdb_is_an_error_naming_the_package():
    from gdb_tinyos.testing import ToolMissing

    with pytest.raises(ToolMissing, match="gdb-multiarch"):
        GdbSession(gdb="gdb-nonexistent").start()
