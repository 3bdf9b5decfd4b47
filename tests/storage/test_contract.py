"""The BlobStore contract, run against LocalStorage and S3Storage (SeaweedFS)."""

from __future__ import annotations

import hashlib
import json
import random
import uuid

import pytest

from cargohold.storage.base import (
    BlobNotFound,
    BlobStore,
    StorageError,
    UploadBusy,
    UploadDataLost,
    UploadState,
)
from cargohold.storage.local import LocalStorage
from cargohold.storage.s3 import MIN_PART_SIZE, PART_SIZE

MIB = 1 << 20


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def persisted(state: UploadState) -> UploadState:
    """What the caller gets back from BlobUpload.storage_metadata in the next request."""
    return json.loads(json.dumps(state))


def push_request(store: BlobStore, upload_id: str, state: UploadState, chunks) -> UploadState:
    """One PATCH request: open the session, append, close, persist the state."""
    writer = store.open_upload(upload_id, persisted(state))
    for chunk in chunks:
        writer.write(chunk)
    return persisted(writer.close())


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, offset = [], 0
    for size in sizes:
        pieces.append(data[offset : offset + size])
        offset += size
    assert offset == len(data)
    return pieces


def upload(store: BlobStore, requests: list[list[bytes]]) -> tuple[str, UploadState]:
    upload_id = str(uuid.uuid4())
    state = persisted(store.begin_upload(upload_id))
    for chunks in requests:
        state = push_request(store, upload_id, state, chunks)
    return upload_id, state


def read_all(iterator) -> bytes:
    return b"".join(iterator)


def test_put_read_size_delete(store: BlobStore) -> None:
    data = b"hello, storage" * 1000
    digest = digest_of(data)
    assert store.blob_size(digest) is None
    store.put_blob(digest, data)
    assert store.blob_size(digest) == len(data)
    assert read_all(store.read_blob(digest)) == data
    store.delete_blob(digest)
    assert store.blob_size(digest) is None
    with pytest.raises(BlobNotFound):
        store.read_blob(digest)
    store.delete_blob(digest)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, 1), (5, 17), (100, None), (13999, 14000), (0, 14000), (7, 7)],
)
def test_ranges(store: BlobStore, start: int, end: int | None) -> None:
    data = random.Random(1).randbytes(14000)
    digest = digest_of(data)
    store.put_blob(digest, data)
    assert read_all(store.read_blob(digest, start, end)) == data[start:end]


def test_empty_blob(store: BlobStore) -> None:
    digest = digest_of(b"")
    store.put_blob(digest, b"")
    assert store.blob_size(digest) == 0
    assert read_all(store.read_blob(digest)) == b""


def test_missing_blob_and_bad_names(store: BlobStore) -> None:
    missing = digest_of(b"never stored")
    assert store.blob_size(missing) is None
    with pytest.raises(BlobNotFound):
        store.read_blob(missing)
    with pytest.raises(BlobNotFound):
        store.read_blob(missing, 2, 2)
    for bad in ("sha256:../../etc/passwd", "nodigest", "sha256:ab/cd"):
        assert store.blob_size(bad) is None
        with pytest.raises(BlobNotFound):
            store.read_blob(bad)


def test_many_small_chunks_across_requests(store: BlobStore) -> None:
    rng = random.Random(2)
    data = rng.randbytes(PART_SIZE + 3 * MIB + 12345)
    sizes: list[int] = []
    remaining = len(data)
    while remaining:
        size = min(remaining, rng.randint(1, 700_000))
        sizes.append(size)
        remaining -= size
    chunks = split(data, sizes)
    # Group the chunks into requests of a few chunks each, as a chunked client would.
    requests = [chunks[i : i + 3] for i in range(0, len(chunks), 3)]
    upload_id, state = upload(store, requests)
    assert read_all(store.read_upload(upload_id, state)) == data
    digest = digest_of(data)
    store.commit_upload(upload_id, state, digest)
    assert store.blob_size(digest) == len(data)
    assert hashlib.sha256(read_all(store.read_blob(digest))).hexdigest() == digest[7:]


def test_large_chunks(store: BlobStore) -> None:
    data = random.Random(3).randbytes(2 * PART_SIZE + MIN_PART_SIZE + 99)
    third = len(data) // 3
    upload_id, state = upload(
        store, [[data[:third]], [data[third : 2 * third]], [data[2 * third :]]]
    )
    digest = digest_of(data)
    store.commit_upload(upload_id, state, digest)
    # Ranges that cross the boundaries of the assembled parts.
    for start, end in [(PART_SIZE - 10, PART_SIZE + 10), (0, None), (len(data) - 5, None)]:
        assert read_all(store.read_blob(digest, start, end)) == data[start:end]


def test_single_request_monolithic(store: BlobStore) -> None:
    data = b"x" * 1000
    upload_id, state = upload(store, [[data]])
    digest = digest_of(data)
    store.commit_upload(upload_id, state, digest)
    assert read_all(store.read_blob(digest)) == data


def test_empty_upload(store: BlobStore) -> None:
    upload_id, state = upload(store, [])
    assert read_all(store.read_upload(upload_id, state)) == b""
    digest = digest_of(b"")
    store.commit_upload(upload_id, state, digest)
    assert store.blob_size(digest) == 0


def test_nothing_visible_before_commit(store: BlobStore) -> None:
    data = random.Random(4).randbytes(PART_SIZE + MIB)
    digest = digest_of(data)
    upload_id = str(uuid.uuid4())
    state = persisted(store.begin_upload(upload_id))
    writer = store.open_upload(upload_id, state)
    writer.write(data[: PART_SIZE + 10])
    assert store.blob_size(digest) is None
    state = persisted(writer.close())
    assert store.blob_size(digest) is None
    state = push_request(store, upload_id, state, [data[PART_SIZE + 10 :]])
    assert store.blob_size(digest) is None
    with pytest.raises(BlobNotFound):
        store.read_blob(digest)
    store.commit_upload(upload_id, state, digest)
    assert store.blob_size(digest) == len(data)


def test_abort_keeps_the_session_as_it_was(store: BlobStore) -> None:
    first = b"a" * (MIN_PART_SIZE - 1)
    upload_id, state = upload(store, [[first]])
    writer = store.open_upload(upload_id, persisted(state))
    writer.write(b"b" * (PART_SIZE + 5))
    writer.abort()
    # The failed request's bytes are gone; the persisted state still reads back whole.
    assert read_all(store.read_upload(upload_id, state)) == first
    state = push_request(store, upload_id, state, [b"c" * 10])
    assert read_all(store.read_upload(upload_id, state)) == first + b"c" * 10
    digest = digest_of(first + b"c" * 10)
    store.commit_upload(upload_id, state, digest)
    assert read_all(store.read_blob(digest)) == first + b"c" * 10


def test_trim_cuts_what_a_request_that_died_left(store: BlobStore) -> None:
    first = random.Random(6).randbytes(MIN_PART_SIZE - 7)
    upload_id, recorded = upload(store, [[first]])
    # A request that stored its bytes and died before the row recorded its state.
    writer = store.open_upload(upload_id, persisted(recorded))
    writer.write(b"x" * (PART_SIZE + 3))
    writer.close()
    hold = store.hold_upload(upload_id)
    hold.trim(recorded, len(first))
    hold.release()
    hold.release()
    assert read_all(store.read_upload(upload_id, recorded)) == first
    state = push_request(store, upload_id, recorded, [b"y" * 10])
    data = first + b"y" * 10
    assert read_all(store.read_upload(upload_id, state)) == data
    store.commit_upload(upload_id, state, digest_of(data))
    assert read_all(store.read_blob(digest_of(data))) == data


def test_trim_reports_recorded_bytes_storage_lacks(store: BlobStore) -> None:
    upload_id, state = upload(store, [[b"z" * 100]])
    hold = store.hold_upload(upload_id)
    with pytest.raises(UploadDataLost):
        hold.trim(state, 101)
    hold.trim(state, 100)
    hold.release()
    assert read_all(store.read_upload(upload_id, state)) == b"z" * 100


def test_local_hold_excludes_other_holders(tmp_path) -> None:
    store = LocalStorage(str(tmp_path / "storage"))
    upload_id, state = upload(store, [[b"held"]])
    hold = store.hold_upload(upload_id)
    with pytest.raises(UploadBusy):
        store.hold_upload(upload_id)
    hold.release()
    again = store.hold_upload(upload_id)
    again.release()
    store.commit_upload(upload_id, state, digest_of(b"held"))
    with pytest.raises(UploadDataLost):
        store.hold_upload(upload_id)
    assert read_all(store.read_blob(digest_of(b"held"))) == b"held"


def test_cancel(store: BlobStore) -> None:
    data = random.Random(5).randbytes(PART_SIZE + 100)
    upload_id, state = upload(store, [[data]])
    store.cancel_upload(upload_id, state)
    store.cancel_upload(upload_id, state)
    with pytest.raises(StorageError):
        read_all(store.read_upload(upload_id, state))
    assert store.blob_size(digest_of(data)) is None


def test_concurrent_sessions_are_independent(store: BlobStore) -> None:
    one, two = b"1" * (MIN_PART_SIZE + 3), b"2" * 77
    id_one, state_one = upload(store, [[one[:10]]])
    id_two, state_two = upload(store, [[two]])
    state_one = push_request(store, id_one, state_one, [one[10:]])
    store.commit_upload(id_two, state_two, digest_of(two))
    store.commit_upload(id_one, state_one, digest_of(one))
    assert read_all(store.read_blob(digest_of(one))) == one
    assert read_all(store.read_blob(digest_of(two))) == two


def test_committing_an_existing_blob_again(store: BlobStore) -> None:
    data = b"same bytes pushed twice"
    digest = digest_of(data)
    for _ in range(2):
        upload_id, state = upload(store, [[data]])
        store.commit_upload(upload_id, state, digest)
    assert read_all(store.read_blob(digest)) == data


def test_check(store: BlobStore) -> None:
    store.check()
