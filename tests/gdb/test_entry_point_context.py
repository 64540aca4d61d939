"""The debugger contract's entry points (kernel/src/debug.rs) act only from the shell's own
context: anywhere a process's kernel stack is still in use they answer STATUS_IN_PROCESS
(-4) — including the last instructions of a process on its way back to the shell
(scheduler::return_to_shell, before its switch to the shell's saved context), where a
call that runs processes would overwrite that saved context.

The call is made with plain gdb (what any user can type), not through the plugin, which
has its own safe-point checks: the kernel's refusal is what is under test."""

from __future__ import annotations

import re

from elftools.elf.elffile import ELFFile

STATUS_IN_PROCESS = -4


def addresses(kernel) -> dict[str, int]:
    """The switch routine, the entry point called, and scheduler::SHELL_CONTEXT (the
    shell's saved context; selftest.rs has a static of the same name)."""
    with open(kernel, "rb") as f:
        symbols = list(ELFFile(f).get_section_by_name(".symtab").iter_symbols())
    by_name = {s.name: s["st_value"] for s in symbols}
    shell = [s["st_value"] for s in symbols if "9scheduler" in s.name and "13SHELL_CONTEXT" in s.name]
    assert len(shell) == 1, shell
    return {"switch": by_name["tinyos_switch_context"], "protect": by_name["tinyos_cow_protect"], "shell": shell[0]}


def test_a_call_while_a_process_switches_back_to_the_shell_is_refused(tinyos_booted, tinyos_kernel):
    s = tinyos_booted
    at = addresses(tinyos_kernel)
    # The switch whose target is the shell's saved context: return_to_shell, still on
    # the exited process's kernel stack.
    s.gdb.run_to(f"*{at['switch']:#x}", condition=f"$x1 == {at['shell']:#x}",
                 action=lambda: s.console.send_line("run hello"), timeout=30)
    s.gdb.cli("set language c")
    out = s.gdb.cli(f"print ((long (*)(unsigned long, unsigned long)) {at['protect']:#x})(0, 0)")
    value = re.search(r"= (-?\d+)", out)
    assert value is not None, out
    assert int(value[1]) == STATUS_IN_PROCESS
    s.gdb.resume()
    s.console.read_until_prompt(timeout=30)
    assert "process 1 (hello) exited with status 0" in s.console.transcript
