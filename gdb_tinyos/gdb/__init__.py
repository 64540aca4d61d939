"""The gdb adapter, the only package that imports ``gdb``: the session and its event hub, the
live target, the command framework, the commands, functions and pretty printers.

Importing this package does not import ``gdb`` (so its gdb-free helpers, e.g.
:mod:`.args`, are testable with plain pytest); :func:`.registry.register_all`, called by the
loader ``gdb_tinyos/gdbinit.py``, is what needs a running gdb.
"""
