"""LocalStorage starts writing an upload's bytes to disk while they arrive, so the sync when
they become a blob waits only for the last of them; the bytes are unchanged by it."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from cargohold.storage import local
from cargohold.storage.local import WRITEBACK_STEP, LocalStorage

MIB = 1 << 20


def _append(store: LocalStorage, upload_id: str, data: bytes, piece: int) -> None:
    writer = store.open_upload(upload_id, {})
    for offset in range(0, len(data), piece):
        writer.write(data[offset : offset + piece])
    writer.close()


def test_appended_bytes_are_handed_to_writeback_in_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    real = local._start_writeback

    def recorded(fd: int, offset: int, length: int) -> None:
        # The range must already be in the file when its write-back starts.
        assert os.fstat(fd).st_size >= offset + length
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(local, "_start_writeback", recorded)
    store = LocalStorage(str(tmp_path))
    upload_id = str(uuid.uuid4())
    store.begin_upload(upload_id)
    first, second = os.urandom(20 * MIB), os.urandom(9 * MIB + 123)
    _append(store, upload_id, first, MIB)
    _append(store, upload_id, second, 3 * MIB)

    assert started == [
        (0, WRITEBACK_STEP),
        (WRITEBACK_STEP, WRITEBACK_STEP),
        # The second request starts counting where the first ended.
        (20 * MIB, 9 * MIB),
    ]
    digest = "sha256:" + hashlib.sha256(first + second).hexdigest()
    store.sync_upload(upload_id, {})
    store.commit_upload(upload_id, {}, digest)
    assert b"".join(store.read_blob(digest)) == first + second


def test_small_appends_start_no_writeback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(local, "_start_writeback", lambda *args: started.append(args))
    store = LocalStorage(str(tmp_path))
    upload_id = str(uuid.uuid4())
    store.begin_upload(upload_id)
    _append(store, upload_id, os.urandom(WRITEBACK_STEP - 1), 64 * 1024)
    assert started == []
