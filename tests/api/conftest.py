from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.repos import Cast, make_cast
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def cast(server: LiveServer) -> Iterator[Cast]:
    made = make_cast(server)
    yield made
    made.close()
