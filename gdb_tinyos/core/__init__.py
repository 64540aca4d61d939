"""Generic machinery that knows nothing of TinyOS or AArch64: the :class:`~.target.Target`
seam (bytes at physical/virtual addresses, registers) with its fake and cached forms,
addresses, register-name spellings, typed errors and the renderers (text, JSON, MI).

Every other layer builds on this one; it imports nothing else of the package.
"""
