"""Starting a kernel to debug: choosing the kernel ELF (:mod:`.kernel`), QEMU with its
gdbstub on loopback (:mod:`.qemu`), the serial console served to other terminals
(:mod:`.console`), and the ``tinyos-gdb`` command that joins them (:mod:`.cli`).

No gdb here: the launcher starts gdb-multiarch as a child process.
"""
