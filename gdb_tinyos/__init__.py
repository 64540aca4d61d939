"""gdb-tinyos: decode and drive TinyOS's copy-on-write memory manager from GDB.

Layering: nothing in this package imports ``gdb`` except ``gdb_tinyos.gdb``
(the gdb adapter) and the loader script. Decoders work on a :class:`~gdb_tinyos.core.target.Target`
and are usable from plain Python, on a live gdb session, or on a QEMU core dump.
"""

__version__ = "0.1.0"
