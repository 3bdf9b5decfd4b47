"""`serve` caps glibc's malloc arenas for itself and the HTTP processes it starts."""

from __future__ import annotations

import pytest

from cargohold import server


def test_serve_sets_the_arena_cap_for_the_processes_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert server.limit_malloc_arenas() is True
    assert server.os.environ["MALLOC_ARENA_MAX"] == str(server.MALLOC_ARENAS)


def test_an_administrators_arena_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert server.limit_malloc_arenas() is True
    assert server.os.environ["MALLOC_ARENA_MAX"] == "4"


def test_a_value_that_is_not_a_number_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "many")
    assert server.limit_malloc_arenas() is False
    assert server.os.environ["MALLOC_ARENA_MAX"] == "many"
