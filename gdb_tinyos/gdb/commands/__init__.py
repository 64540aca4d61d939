"""The plugin's gdb commands and convenience functions, one module per family.

Each module's classes are marked with :func:`gdb_tinyos.gdb.registry.command` and
registered by :func:`~gdb_tinyos.gdb.registry.register_all`; a module that fails to import
costs only its own commands.
"""
