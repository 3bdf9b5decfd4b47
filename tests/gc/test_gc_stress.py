"""Pushes sharing layers with images being deleted, while GC passes run in a loop."""

from __future__ import annotations

import random
import secrets
import threading
import time

from sqlalchemy.exc import IntegrityError, OperationalError

from cargohold.domain import manifests, tags
from cargohold.domain.gc import GcReport
from cargohold.domain.manifests import ManifestError
from tests.gc.conftest import Image, Registry, sha256

STRESS_SECONDS = 12
PUSHERS = 3


def enough(passes: dict[str, int]) -> bool:
    return passes["gc"] >= 3 and passes["pushed"] >= 10 and passes["deleted"] >= 3


def test_pushes_racing_gc_never_lose_what_they_were_told_was_pushed(registry: Registry) -> None:
    # No time machine: a deleted tag's manifest and its layers go at the next pass, while
    # other pushes upload those same shared layers again.
    registry.set_window(0)
    shared_layers = [b"base-" + secrets.token_bytes(3000) for _ in range(4)]
    alive: dict[tuple[str, str], Image] = {}
    pushed: list[Image] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    passes = {"gc": 0, "gc_retried": 0, "pushed": 0, "retried": 0, "deleted": 0}

    def pusher(number: int) -> None:
        rng = random.Random(number)
        while not stop.is_set():
            repository = f"stress{rng.randrange(2)}"
            tag = f"p{number}-{passes['pushed']}"
            layers = [rng.choice(shared_layers), secrets.token_bytes(500)]
            for _attempt in range(30):
                try:
                    image = registry.push_image(repository, tag, layers)
                    break
                except (ManifestError, IntegrityError, OperationalError):
                    # GC took a layer between upload and manifest: upload it again.
                    passes["retried"] += 1
            else:
                raise AssertionError("a push kept failing")
            with lock:
                alive[(repository, tag)] = image
                pushed.append(image)
                passes["pushed"] += 1

    def deleter() -> None:
        rng = random.Random(99)
        while not stop.is_set():
            with lock:
                victim = rng.choice(sorted(alive)) if len(alive) > 3 else None
                if victim is not None:
                    del alive[victim]
            if victim is not None:
                registry.delete_tag(*victim)
                passes["deleted"] += 1
            time.sleep(0.05)

    def collector() -> None:
        while not stop.is_set():
            try:
                registry.gc()
            except OperationalError:
                # A deadlock victim on PostgreSQL; the worker retries the same way.
                passes["gc_retried"] += 1
                continue
            passes["gc"] += 1

    def guarded(target, *args):
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        return threading.Thread(target=run)

    threads = [guarded(pusher, n) for n in range(PUSHERS)]
    threads += [guarded(deleter), guarded(collector)]
    for thread in threads:
        thread.start()
    # At least STRESS_SECONDS, longer on a loaded machine until enough of each happened.
    deadline = time.monotonic() + STRESS_SECONDS * 5
    time.sleep(STRESS_SECONDS)
    while time.monotonic() < deadline and not stop.is_set() and not enough(passes):
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert enough(passes), passes

    for image in alive.values():
        registry.pull(image)

    registry.gc()
    for image in alive.values():
        registry.pull(image)
    # After a quiet pass exactly the blobs of the tags still alive remain.
    needed = {digest for image in alive.values() for digest in image.blobs}
    for digest in {digest for image in pushed for digest in image.blobs}:
        assert registry.stored(digest) == (digest in needed), digest
        assert registry.blob_row(digest) == (digest in needed), digest


def test_a_manifest_being_stored_keeps_the_layer_links_gc_would_drop(registry: Registry) -> None:
    # The untagged old manifest is the only committed reference to the shared layer. A push
    # storing a new manifest on that layer has not committed yet when a pass removes the old
    # one: the pass must wait for it, not drop the repository's link to the layer.
    registry.set_window(0)
    shared = b"shared-" + secrets.token_bytes(2000)
    old = registry.push_image("race", "old", [shared, secrets.token_bytes(500)])
    registry.delete_tag("race", "old")
    fresh = secrets.token_bytes(500)
    config = b'{"architecture": "amd64", "os": "linux"}' + secrets.token_bytes(8)
    for blob in (config, fresh):
        registry.push_blob("race", blob)
    raw = Registry.manifest_bytes(config, [shared, fresh])
    image = Image(
        "race",
        "new",
        manifests.sha256_digest(raw),
        {sha256(blob): blob for blob in (config, shared, fresh)},
    )

    reports: list[GcReport] = []
    with registry.sessions() as session:
        repository = registry.repository(session, "race")
        stored = manifests.store_manifest(
            session, repository.id, manifests.parse_manifest(raw, None)
        )
        tags.set_tag(session, repository.id, "new", stored.id)
        collector = threading.Thread(target=lambda: reports.append(registry.gc()))
        collector.start()
        collector.join(1.0)
        session.commit()
    collector.join(60)

    assert reports and reports[0].manifests == [old.digest]
    registry.pull(image)
    assert sha256(shared) not in reports[0].blobs
