"""The timeout scale: one factor from the environment (set by --tinyos-timeout-scale)."""

from __future__ import annotations

import pytest

from gdb_tinyos.core.errors import TinyOSError
from gdb_tinyos.core.timeouts import TIMEOUT_SCALE_ENV, scaled, timeout_scale


def test_default_is_one(monkeypatch):
    monkeypatch.delenv(TIMEOUT_SCALE_ENV, raising=False)
    assert scaled(10.0) == 10.0


def test_factor_from_the_environment(monkeypatch):
    monkeypatch.setenv(TIMEOUT_SCALE_ENV, "2.5")
    assert scaled(10.0) == 25.0


@pytest.mark.parametrize("bad", ["0", "-1", "fast", "inf", "nan"])
def test_bad_factors_are_one_line_errors(monkeypatch, bad):
    monkeypatch.setenv(TIMEOUT_SCALE_ENV, bad)
    with pytest.raises(TinyOSError, match="expected a positive number"):
        timeout_scale()
