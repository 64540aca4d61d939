# The scripted session of `./scripts/debug --batch` / `tinyos-gdb --batch`: the README's
# walkthrough, from reset to a copy-on-write fault and back to the shell.
# tinyos-gdb has already loaded the symbols and the plugin and connected to QEMU, which
# holds the CPU at the kernel's first instruction; it gives gdb the serial console's socket
# in $TINYOS_CONSOLE, which `console_type` (types a line once the shell prompts) and
# `console_expect` (fails unless the console showed a text) use. Every step must succeed:
# a failing command, a stop somewhere unexpected (`expect`) or a console that does not
# show what it should ends the batch with a non-zero status.

python
from gdb_tinyos.launcher.console import console_expect, console_type


def expect(condition: str, failure: str) -> None:
    """Fails the walkthrough with ``failure`` unless the gdb expression holds at this stop."""
    if not bool(gdb.parse_and_eval(condition)):
        raise gdb.GdbError(f"walkthrough: {failure} ({condition} is false)")
end

echo \n=== 1. where the CPU stopped: reset, MMU off, physical addresses ===\n
info registers pc
bt
x/4i $pc

echo \n=== 2. the plugin ===\n
tinyos-info

echo \n=== 3. run to the shell's main loop ===\n
tbreak tinyos::shell::run
continue
bt 3
tinyos-info

echo \n=== 4. translation: the kernel's own view and a stack address ===\n
va2pa $pc
va2pa $sp
pt --kernel

set trace-commands on

echo \n=== 5. `run forkwrite` on the console; stop when its fork completes (debugger event 19) ===\n
tinyos-break fork --temporary
python console_type("run forkwrite")
continue
print $cow_event()
python expect("($x0 & 0xffffffff) == 19", "not stopped at the fork event")
python expect("$x1 == 1 && $x2 == 2", "the fork is not pid 1 -> pid 2 (the first program after boot)")
info registers x1 x2
cow-status
pt --pid 2 --filter user

echo \n=== 6. the child writes the shared data page: a COW fault (stop in the fault path) ===\n
tbreak *tinyos::process::cow_fault::resolve_locked
continue
python expect("$x1 == 2", "the first COW fault is not the child's")
bt 3
info registers ESR_EL1 FAR_EL1 ELR_EL1
x/i $ELR_EL1
va2pa $FAR_EL1 --pid 2

echo \n=== 7. the fault resolved (debugger event 16): the child has its own copy ===\n
tinyos-break fault --pid 2 --temporary
continue
python expect("$x1 == 2 && $x2 == 0x800000", "event 16 is not the child's fault at 0x800000")
cow-status
va2pa 0x800000 --pid 2
va2pa 0x800000 --pid 1
cow-check

echo \n=== 8. to the end of `run forkwrite` (debugger event 2: the shell command finished) ===\n
tinyos-break done --temporary
continue
python expect("($x0 & 0xffffffff) == 2", "not stopped where the shell command finished")
python console_expect("forkwrite: parent still sees 0x1111, child exited 0")
cow-stats
cow-check

set trace-commands off
echo \n=== done ===\n
