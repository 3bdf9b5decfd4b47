"""Every storage driver behind the same fixture, so one set of cases proves them all."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold.storage.base import BlobStore
from cargohold.storage.local import LocalStorage
from cargohold.storage.s3 import S3Storage
from tests.support.seaweed import SeaweedS3, shared_seaweed


@pytest.fixture(scope="session")
def seaweed() -> SeaweedS3:
    return shared_seaweed()


@pytest.fixture(scope="session")
def s3_bucket(seaweed: SeaweedS3) -> str:
    return seaweed.create_bucket("contract")


def make_s3_store(seaweed: SeaweedS3, bucket: str, **options) -> S3Storage:
    return S3Storage(
        s3_bucket=bucket,
        storage_path=f"/tests/{secrets.token_hex(6)}",
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        endpoint_url=seaweed.endpoint_url,
        **options,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalStorage(str(tmp_path / "storage"))
    else:
        seaweed = request.getfixturevalue("seaweed")
        yield make_s3_store(seaweed, request.getfixturevalue("s3_bucket"))
