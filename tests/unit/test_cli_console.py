"""The console helpers a gdb script uses in a tinyos-gdb session (``console_type``,
``console_expect``), against the real ConsoleBridge in front of a fake serial console."""

from __future__ import annotations

import pytest

from gdb_tinyos.launcher.console import CONSOLE_ENV, ConsoleBridge, console_expect, console_socket, console_type
from gdb_tinyos.core.errors import ConsoleError

from test_cli import FakeConsole


@pytest.fixture
def bridged(tmp_path):
    """(fake console, the environment a gdb of this session would get)."""
    console = FakeConsole("TinyOS 0.1.0\r\nbooted\r\n")
    with ConsoleBridge(console, tmp_path / "c.sock", tmp_path / "c.log"):
        yield console, {CONSOLE_ENV: str(tmp_path / "c.sock")}


def test_type_waits_for_the_prompt_then_types_the_line_and_enter(bridged):
    console, env = bridged
    typer = console_type("run forkwrite", timeout=10, environ=env)
    assert not console.got_input.wait(0.3)  # no prompt yet: the shell would not be reading
    console.transcript += "tinyos> "
    assert console.got_input.wait(5)
    typer.join(5)
    assert bytes(console.typed) == b"run forkwrite\r"


def test_type_at_a_prompt_already_shown(bridged):
    console, env = bridged
    console.transcript += "tinyos> "
    console_type("ps", timeout=10, environ=env)
    assert console.got_input.wait(5)  # the bridge forwards it from its own thread
    assert bytes(console.typed) == b"ps\r"


def test_expect_returns_what_was_printed_once_the_text_is_there(bridged):
    console, env = bridged
    console.transcript += "tinyos> run hello\r\nhello from pid 1\r\ntinyos> "
    seen = console_expect("hello from pid 1\ntinyos> ", timeout=5, environ=env)  # "\r\n" read as "\n"
    assert seen.startswith("TinyOS 0.1.0\r\n")


def test_expect_fails_with_the_text_and_the_console_tail(bridged):
    _, env = bridged
    with pytest.raises(ConsoleError, match=r"did not show 'never printed' within 0.5 s .*booted"):
        console_expect("never printed", timeout=0.5, environ=env)


def test_no_session_console_is_one_clear_error(tmp_path):
    with pytest.raises(ConsoleError, match=r"\$TINYOS_CONSOLE is not set: start gdb with tinyos-gdb"):
        console_socket({})
    with pytest.raises(ConsoleError, match="cannot connect to the serial console at .*gone.sock"):
        console_type("ps", environ={CONSOLE_ENV: str(tmp_path / "gone.sock")})
