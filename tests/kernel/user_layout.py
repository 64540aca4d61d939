"""The user address-space layout the kernel contract fixes (code 0x400000, data 0x800000,
heap 0x10000000, stack below 0x7FFF_FFFF_0000), for the test_cow_* modules. The shell's
answers are parsed by gdb_tinyos.testing.shell."""

from __future__ import annotations

PAGE = 4096
USER_DATA_VA = 0x80_0000
USER_HEAP_START = 0x1000_0000
USER_STACK_TOP = 0x7FFF_FFFF_0000
STACK_PAGES = 2
DATA_PAGES = 1
KILLED_STATUS = 137
# Writable pages every process starts with: its data page and its stack pages.
BASE_WRITABLE_VAS = [USER_DATA_VA] + [USER_STACK_TOP - i * PAGE for i in range(1, STACK_PAGES + 1)]
