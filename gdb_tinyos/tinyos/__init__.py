"""What a TinyOS kernel is, decoded from its ELF and memory: the COW manager, the frame
allocator, the process table, the debugger contract and its events, the checks with their
conventions, and the reports the commands print.

Built on :mod:`gdb_tinyos.core`, :mod:`gdb_tinyos.aarch64` and :mod:`gdb_tinyos.debuginfo`;
no gdb here, so every decoder runs on synthetic memory, core dumps and live sessions alike.
"""
