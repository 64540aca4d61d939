"""The gdb adapter: thin ``gdb.Command`` / ``gdb.MICommand`` classes over the decoders.

Importing this package does not import ``gdb`` (so its gdb-free helpers, e.g.
:mod:`.args`, are testable with plain pytest); :func:`.registry.register_all`, called by the
loader ``gdb_tinyos/gdbinit.py``, is what needs a running gdb.
"""
