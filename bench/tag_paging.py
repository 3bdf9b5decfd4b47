"""Times listRepoTags on a repository with 10,000 tags: page 1 and page 100 at limit=100.

Run from the checkout root: `python -m bench.tag_paging` (CARGOHOLD_TEST_DB picks the backend).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from cargohold.db.models.registry import Tag
from cargohold.domain import repositories
from cargohold.domain.tags.history import find_manifest
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.content import add_manifest, make_repository
from tests.support.server import LiveServer

TAG_COUNT = 10_000
ROUNDS = 50


def main() -> None:
    server = LiveServer(Path(tempfile.mkdtemp()) / "bench").start()
    try:
        owner = create_user(server)
        path = make_repository(server, owner.username)
        digest = add_manifest(server, path)
        namespace, name = path.split("/")
        with server.db() as session:
            repo = repositories.find_repository(session, namespace, name)
            manifest_id = find_manifest(session, repo, digest).id
            start = int(time.time() * 1000) - TAG_COUNT
            session.execute(
                insert(Tag),
                [
                    {
                        "repository_id": repo.id,
                        "manifest_id": manifest_id,
                        "name": f"tag{number:05d}",
                        "lifetime_start_ms": start + number,
                        "hidden": False,
                        "reversion": False,
                        "immutable": False,
                    }
                    for number in range(TAG_COUNT)
                ],
            )
        with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
            for page in (1, 100):
                url = f"/api/v1/repository/{path}/tag/?limit=100&page={page}"
                client.get(url).raise_for_status()
                times = []
                for _ in range(ROUNDS):
                    began = time.perf_counter()
                    body = client.get(url).json()
                    times.append((time.perf_counter() - began) * 1000)
                assert len(body["tags"]) == 100
                print(
                    f"page {page:3d}: median {statistics.median(times):6.1f} ms, "
                    f"min {min(times):6.1f} ms over {ROUNDS} requests"
                )
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
