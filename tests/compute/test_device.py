"""How many CPU threads torch may use."""

from __future__ import annotations

import pytest


def test_cpu_threads_leave_half_the_cores_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from synthscope.compute.device import cpu_threads

    monkeypatch.delenv("SYNTHSCOPE_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert cpu_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert cpu_threads() == 8
    monkeypatch.setenv("SYNTHSCOPE_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("SYNTHSCOPE_THREADS", "all of them")  # not a number: the default
    assert cpu_threads() == 8
