# The scripted session of `./scripts/debug --batch` / `tinyos-gdb --batch`.
# tinyos-gdb has already loaded the symbols and the plugin and connected to QEMU, which
# holds the CPU at the kernel's first instruction. Every step must succeed: the batch
# exits with gdb's status, so a failing command fails the walkthrough.

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

echo \n=== done ===\n
