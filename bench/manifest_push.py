"""Cost of a manifest push in-process: SQL statements and CPU time per push, as the repository
grows. Each image has 3 new layers and a config, uploaded (linked with a grace period) before
its manifest is pushed to a new tag, as a client's push does.

Run from the checkout root: `python -m bench.manifest_push` (CARGOHOLD_TEST_DB picks the backend).
"""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from cargohold.db.base import make_engine, make_session_factory
from cargohold.domain import blobs, manifest_pushes, manifests, repositories
from cargohold.domain.registry_audit import Actor
from tests.support.accounts import create_user
from tests.support.content import make_repository
from tests.support.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256
from tests.support.server import LiveServer

SIZES = (100, 1000)
MEASURED = 200


def _descriptor(media_type: str) -> dict:
    return {"mediaType": media_type, "digest": sha256(secrets.token_bytes(16)), "size": 16384}


class Pusher:
    def __init__(self, server: LiveServer, path: str) -> None:
        self.settings = server.settings
        self.engine = make_engine(self.settings.DB_URI)
        self.sessions = make_session_factory(self.engine)
        self.namespace, self.name = path.split("/")
        self.actor = Actor(self.namespace, "user", "127.0.0.1", "bench")
        self.statements = 0
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.statements += 1

    def push(self, tag: str) -> tuple[int, float, float]:
        """Upload the blobs of a new image, then push its manifest: (statements, CPU seconds,
        wall seconds) of the manifest push alone. Wall time includes the database server's
        work, which CPU time in this process does not."""
        config, *layers = [_descriptor(OCI_CONFIG)] + [_descriptor(OCI_LAYER) for _ in range(3)]
        with self.sessions() as session:
            repo = repositories.find_repository_ref(session, self.namespace, self.name)
            for descriptor in (config, *layers):
                blob = blobs.ensure_blob(session, descriptor["digest"], descriptor["size"])
                blobs.link_blob(session, repo.id, blob, expires_at=blobs.grace_deadline())
            session.commit()
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
        ).encode()
        before, began, wall = self.statements, time.process_time(), time.perf_counter()
        parsed = manifests.parse_manifest(body, OCI_MANIFEST)
        with self.sessions() as session:
            repo = repositories.find_repository_ref(session, self.namespace, self.name)
            manifest_pushes.push_manifest(
                session, self.settings, repo, self.namespace, self.name, tag, parsed, {}, self.actor
            )
            session.commit()
        return (
            self.statements - before,
            time.process_time() - began,
            time.perf_counter() - wall,
        )


def main() -> None:
    server = LiveServer(Path(tempfile.mkdtemp()) / "bench").start()
    try:
        owner = create_user(server)
        path = make_repository(server, owner.username)
        pusher = Pusher(server, path)
        pushed = 0
        for size in SIZES:
            while pushed < size:
                pusher.push(f"fill{pushed}")
                pushed += 1
            results = [pusher.push(f"m{size}-{n}") for n in range(MEASURED)]
            pushed += MEASURED
            counts = [count for count, _, _ in results]
            cpu = [seconds * 1000 for _, seconds, _ in results]
            wall = [seconds * 1000 for _, _, seconds in results]
            print(
                f"{pusher.engine.dialect.name} at {size:5d} images: "
                f"{statistics.median(counts):.0f} statements, "
                f"CPU median {statistics.median(cpu):.2f} ms, mean {statistics.mean(cpu):.2f} ms, "
                f"wall median {statistics.median(wall):.2f} ms per manifest push "
                f"({MEASURED} pushes)"
            )
        pusher.engine.dispose()
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
