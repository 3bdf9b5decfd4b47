"""What only the S3 drivers do: key layout, part objects, presigned URLs, configuration."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import httpx
import pytest

from cargohold.config import ConfigError, Settings
from cargohold.storage import make_store
from cargohold.storage.base import StorageError
from cargohold.storage.s3 import MIN_PART_SIZE, PART_SIZE, RadosGWStorage, S3Storage, part_size_for
from tests.storage.conftest import make_s3_store
from tests.storage.test_contract import digest_of, persisted, push_request
from tests.support.seaweed import SeaweedS3

MIB_AND_A_BIT = (1 << 20) + 1234


@pytest.fixture
def s3(seaweed: SeaweedS3, s3_bucket: str) -> S3Storage:
    return make_s3_store(seaweed, s3_bucket)


def keys_under(store: S3Storage, prefix: str) -> list[str]:
    return store._list(store._key(prefix))


def test_blob_layout_is_quays(s3: S3Storage) -> None:
    data = b"layout"
    digest = digest_of(data)
    s3.put_blob(digest, data)
    hex_digest = digest.split(":")[1]
    assert keys_under(s3, "sha256/") == [s3._key(f"sha256/{hex_digest[:2]}/{hex_digest}")]


def test_upload_parts_respect_the_minimum_size_and_vanish_after_commit(s3: S3Storage) -> None:
    upload_id = str(uuid.uuid4())
    state = persisted(s3.begin_upload(upload_id))
    data = b""
    for _ in range(12):
        chunk = secrets.token_bytes(MIB_AND_A_BIT)
        data += chunk
        state = push_request(s3, upload_id, state, [chunk])
        sizes = [part["size"] for part in state["parts"]]
        assert all(size >= MIN_PART_SIZE for size in sizes[:-1])
        assert sum(sizes) == len(data)
    digest = digest_of(data)
    s3.commit_upload(upload_id, state, digest)
    assert keys_under(s3, "uploads/") == []
    assert hashlib.sha256(b"".join(s3.read_blob(digest))).hexdigest() == digest[7:]


def test_replaced_tails_are_deleted_once_the_next_state_is_used(s3: S3Storage) -> None:
    upload_id = str(uuid.uuid4())
    state = persisted(s3.begin_upload(upload_id))
    state = push_request(s3, upload_id, state, [b"a" * 100])
    first_tail = state["parts"][0]["key"]
    state = push_request(s3, upload_id, state, [b"b" * 100])
    assert state["stale"] == [first_tail]
    state = push_request(s3, upload_id, state, [b"c" * 100])
    remaining = keys_under(s3, f"uploads/{upload_id}/")
    assert first_tail not in remaining
    assert sorted(remaining) == sorted([state["parts"][0]["key"], *state["stale"]])


def test_cancel_removes_parts_of_requests_never_persisted(s3: S3Storage) -> None:
    upload_id = str(uuid.uuid4())
    state = persisted(s3.begin_upload(upload_id))
    state = push_request(s3, upload_id, state, [b"kept" * 10])
    # A request whose state the caller never stored (the process died after close()).
    push_request(s3, upload_id, state, [b"x" * (PART_SIZE + 1)])
    assert len(keys_under(s3, f"uploads/{upload_id}/")) >= 3
    s3.cancel_upload(upload_id, state)
    assert keys_under(s3, f"uploads/{upload_id}/") == []


def test_presigned_download(s3: S3Storage) -> None:
    data = secrets.token_bytes(3000)
    digest = digest_of(data)
    s3.put_blob(digest, data)
    url = s3.blob_download_url(digest)
    assert url is not None and "X-Amz-Signature" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    tampered = url.replace(digest.split(":")[1], digest_of(b"other").split(":")[1])
    assert httpx.get(tampered).status_code == 403


def test_direct_download_can_be_turned_off(seaweed: SeaweedS3, s3_bucket: str) -> None:
    store = make_s3_store(seaweed, s3_bucket, direct_download=False)
    assert store.blob_download_url(digest_of(b"x")) is None


def test_check_fails_without_the_bucket(seaweed: SeaweedS3) -> None:
    store = make_s3_store(seaweed, "no-such-bucket-" + secrets.token_hex(4))
    with pytest.raises(StorageError):
        store.check()


def test_check_fails_with_wrong_credentials(seaweed: SeaweedS3, s3_bucket: str) -> None:
    store = S3Storage(
        s3_bucket=s3_bucket,
        s3_access_key=seaweed.access_key,
        s3_secret_key="wrong",
        endpoint_url=seaweed.endpoint_url,
    )
    with pytest.raises(StorageError):
        store.check()


def test_part_size_grows_to_stay_under_ten_thousand_parts() -> None:
    total, index = 0, 0
    while total < 200 * (1 << 30):
        total += part_size_for(index)
        index += 1
    assert index < 10_000
    assert part_size_for(0) >= MIN_PART_SIZE


def settings_with(entry: list) -> Settings:
    return Settings(
        DISTRIBUTED_STORAGE_CONFIG={"default": entry}, DISTRIBUTED_STORAGE_PREFERENCE=["default"]
    )


def test_make_store_reads_quays_radosgw_config(seaweed: SeaweedS3, s3_bucket: str) -> None:
    store = make_store(settings_with(seaweed.storage_config(s3_bucket, "/from-config")))
    assert isinstance(store, RadosGWStorage)
    assert store.prefix == "from-config"
    store.check()
    assert store.blob_download_url(digest_of(b"x")) is not None


def test_make_store_reads_quays_s3_config(seaweed: SeaweedS3, s3_bucket: str) -> None:
    entry = [
        "S3Storage",
        {
            "s3_bucket": s3_bucket,
            "storage_path": "/s3",
            "s3_access_key": seaweed.access_key,
            "s3_secret_key": seaweed.secret_key,
            "host": "127.0.0.1",
            "port": seaweed.s3_port,
            "is_secure": False,
            "s3_region": "us-east-1",
        },
    ]
    settings = settings_with(entry)
    settings.FEATURE_PROXY_STORAGE = True
    store = make_store(settings)
    assert isinstance(store, S3Storage)
    store.check()
    assert store.blob_download_url(digest_of(b"x")) is None


def test_make_store_names_the_missing_parameter() -> None:
    with pytest.raises(ConfigError, match=r"DISTRIBUTED_STORAGE_CONFIG\.default.*s3_bucket"):
        make_store(settings_with(["S3Storage", {"storage_path": "/x"}]))
