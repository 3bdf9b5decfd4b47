"""A live server on S3 storage: health reports what the object store can do."""

from __future__ import annotations

import httpx

from tests.support.seaweed import SeaweedS3
from tests.support.server import s3_storage_config


def test_server_on_s3_reports_storage_healthy(server_factory, seaweed: SeaweedS3) -> None:
    live = server_factory(s3_storage_config())
    response = httpx.get(live.url + "/health/endtoend")
    assert response.status_code == 200
    assert response.json()["data"]["services"]["storage"] is True
    store = live.store()
    store.check()


def test_server_with_a_missing_bucket_is_unhealthy(server_factory, seaweed: SeaweedS3) -> None:
    entry = seaweed.storage_config("bucket-that-was-never-created")
    live = server_factory({"DISTRIBUTED_STORAGE_CONFIG": {"s3": entry}})
    response = httpx.get(live.url + "/health/endtoend")
    assert response.status_code == 503
    assert response.json()["data"]["services"] == {"database": True, "storage": False}
