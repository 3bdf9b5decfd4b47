"""An unexpected error answers 500 and leaves the keep-alive connection open for the next
request (Starlette re-raises after answering, and the server used to drop the connection).
A number too large to store is the client's error, on every database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cargohold.app import create_app
from tests.support.keepalive import KeepAliveConnection
from tests.support.server import LiveServer, app_in_thread


@pytest.fixture
def failing_app_port(server: LiveServer) -> Iterator[int]:
    """The real application, served in this process, with one route that always fails."""
    app = create_app(server.settings)

    @app.get("/api/v1/always-fails")
    def always_fails() -> None:
        raise RuntimeError("boom")

    @app.get("/api/v1/stores-a-huge-number")
    def stores_a_huge_number() -> None:
        # What SQLite's driver raises for an integer beyond 64 bits.
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    with app_in_thread(app) as port:
        yield port


def test_a_500_keeps_the_connection(failing_app_port: int) -> None:
    with KeepAliveConnection(failing_app_port) as connection:
        failed = connection.request("GET", "/api/v1/always-fails")
        assert failed.status == 500
        assert failed.json()["error_type"] == "internal_error"
        assert "boom" not in failed.body.decode()
        assert connection.request("GET", "/health/instance").status == 200
        assert connection.request("GET", "/api/v1/always-fails").status == 500
        assert connection.request("GET", "/api/v1/discovery").status == 200


def test_a_value_too_large_to_store_is_a_400(failing_app_port: int) -> None:
    with KeepAliveConnection(failing_app_port) as connection:
        refused = connection.request("GET", "/api/v1/stores-a-huge-number")
        assert refused.status == 400
        assert refused.json()["detail"] == "The request contains a value that cannot be stored."
        assert connection.request("GET", "/health/instance").status == 200
