"""How each of Quay's DB_CONNECTION_ARGS is read, per backend."""

from __future__ import annotations

import logging

import pytest

from cargohold.db.connection_args import translate


def test_postgres_arguments_are_split_into_driver_and_pool_settings(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        options = translate(
            "postgresql",
            {
                "autorollback": True,
                "threadlocals": True,
                "sslmode": "verify-full",
                "sslrootcert": "/etc/ca.pem",
                "connect_timeout": 5,
                "max_connections": 7,
                "stale_timeout": 120,
                "charset": "utf8",
            },
        )
    assert options.connect_args == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
        "connect_timeout": 5,
    }
    assert (options.pool_size, options.pool_recycle) == (7, 120)
    assert [r.getMessage() for r in caplog.records] == [
        "DB_CONNECTION_ARGS charset has no meaning for postgresql and is ignored"
    ]


def test_a_ca_block_asks_for_a_verified_connection() -> None:
    options = translate("postgresql", {"ssl": {"ca": "/etc/ca.pem"}})
    assert options.connect_args == {"sslrootcert": "/etc/ca.pem", "sslmode": "verify-full"}


@pytest.mark.parametrize("key", ["autorollback", "threadlocals"])
def test_turning_built_in_behaviour_off_is_warned_about(caplog, key: str) -> None:
    with caplog.at_level(logging.WARNING):
        assert translate("postgresql", {key: False}).connect_args == {}
    assert "cargohold always behaves as if true" in caplog.text


def test_sqlite_keeps_only_its_own_timeout(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        options = translate("sqlite", {"timeout": 10, "sslmode": "require", "autorollback": True})
    assert options.connect_args == {"timeout": 10}
    assert "sslmode has no meaning for sqlite" in caplog.text
