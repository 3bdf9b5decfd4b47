"""Tags API: history listing, create/move, expiration, delete, restore, time machine."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.content import add_index, add_manifest, make_repository, tag_manifest
from tests.support.repos import Cast, grant, share
from tests.support.server import LiveServer

TAG_KEYS = {
    "name",
    "reversion",
    "immutable",
    "start_ts",
    "manifest_digest",
    "is_manifest_list",
    "size",
    "last_modified",
}


def last_audit(server: LiveServer, kind: str) -> dict:
    with server.db() as session:
        row = session.scalars(
            select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.id.desc())
        ).first()
    assert row is not None, f"no {kind} entry"
    entry = json.loads(row.metadata_json)
    entry.pop("request_id", None)  # every entry's; not what these tests look at
    return entry


@pytest.fixture(scope="module")
def history(cast: Cast) -> dict:
    """latest: m1 → m2 → m3 (moves), then deleted; stable → m1; index → list."""
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    m1, m2, m3 = (add_manifest(cast.server, path, (n * 100,)) for n in (1, 2, 3))
    dead = add_manifest(cast.server, path)
    for digest in (m1, m2, m3):
        tag_manifest(cast.server, path, "latest", digest)
        time.sleep(0.01)
    tag_manifest(cast.server, path, "stable", m1)
    missing = "sha256:" + "ab" * 32
    index = add_index(cast.server, path, [m2], [missing])
    tag_manifest(cast.server, path, "multi", index)
    return {
        "path": path,
        "m1": m1,
        "m2": m2,
        "m3": m3,
        "dead": dead,
        "index": index,
        "missing": missing,
    }


def tags(client: httpx.Client, path: str, query: str = "") -> httpx.Response:
    return client.get(f"/api/v1/repository/{path}/tag/?{query}")


def test_history_listing_shapes(cast: Cast, history: dict) -> None:
    path = history["path"]
    body = tags(cast.clients["reader"], path).json()
    assert body["page"] == 1 and body["has_additional"] is False
    rows = body["tags"]
    assert [(r["name"], r["manifest_digest"]) for r in rows] == [
        ("multi", history["index"]),
        ("stable", history["m1"]),
        ("latest", history["m3"]),
        ("latest", history["m2"]),
        ("latest", history["m1"]),
    ]
    alive, moved = rows[2], rows[3]
    assert set(alive) == TAG_KEYS
    assert alive["reversion"] is False and alive["is_manifest_list"] is False
    assert alive["size"] == 300
    assert set(moved) == TAG_KEYS | {"end_ts", "expiration"}
    assert moved["end_ts"] == alive["start_ts"] or moved["end_ts"] == alive["start_ts"] - 1
    assert moved["expiration"].endswith(" -0000")
    multi = rows[0]
    assert multi["is_manifest_list"] is True and multi["size"] is None
    assert multi["is_sparse"] is True
    assert multi["child_manifest_count"] == 2 and multi["present_child_count"] == 1
    assert multi["child_manifests_presence"] == {history["m2"]: True, history["missing"]: False}
    active = tags(cast.clients["reader"], path, "onlyActiveTags=true").json()["tags"]
    assert [r["name"] for r in active] == ["multi", "stable", "latest"]
    assert all("end_ts" not in r for r in active)


def test_list_permissions(cast: Cast, history: dict) -> None:
    path = history["path"]
    assert tags(cast.clients["anonymous"], path).status_code == 401
    assert tags(cast.clients["stranger"], path).status_code == 403
    for caller in ("owner", "reader", "writer", "admin"):
        assert tags(cast.clients[caller], path).status_code == 200
    public = make_repository(cast.server, cast.owner.username, public=True)
    for client in cast.clients.values():
        assert tags(client, public).json() == {"tags": [], "page": 1, "has_additional": False}
    missing = f"{cast.owner.username}/nothere"
    assert tags(cast.clients["stranger"], missing).status_code == 403
    assert tags(cast.clients["owner"], missing).status_code == 404
    no_slash = cast.clients["reader"].get(f"/api/v1/repository/{path}/tag")
    assert no_slash.status_code == 200 and len(no_slash.json()["tags"]) == 5


def test_filters(cast: Cast, history: dict) -> None:
    client, path = cast.clients["reader"], history["path"]
    like = tags(client, path, "filter_tag_name=like:LAT").json()["tags"]
    assert {r["name"] for r in like} == {"latest"} and len(like) == 3
    eq = tags(client, path, "filter_tag_name=eq:stable").json()["tags"]
    assert [r["name"] for r in eq] == ["stable"]
    ignored = tags(client, path, "filter_tag_name=regex:x").json()["tags"]
    assert len(ignored) == 5
    bad = tags(client, path, "filter_tag_name=random")
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("Unsupported syntax for filter_tag_name.")
    specific = tags(client, path, "specificTag=latest&onlyActiveTags=true").json()["tags"]
    assert [r["manifest_digest"] for r in specific] == [history["m3"]]
    assert tags(client, path, "specificTag=nope").json()["tags"] == []
    wildcard = tags(client, path, "filter_tag_name=like:%25").json()["tags"]
    assert wildcard == []


def test_paging_and_bad_numbers(cast: Cast) -> None:
    path = make_repository(cast.server, cast.owner.username)
    digest = add_manifest(cast.server, path)
    for number in range(10):
        tag_manifest(cast.server, path, f"t{number}", digest)
    client = cast.clients["owner"]
    first = tags(client, path, "page=1&limit=5").json()
    assert (len(first["tags"]), first["has_additional"], first["page"]) == (5, True, 1)
    second = tags(client, path, "page=2&limit=5").json()
    assert (len(second["tags"]), second["has_additional"]) == (5, False)
    assert {r["name"] for r in first["tags"]} | {r["name"] for r in second["tags"]} == {
        f"t{n}" for n in range(10)
    }
    third = tags(client, path, "page=3&limit=5").json()
    assert third == {"tags": [], "page": 3, "has_additional": False}
    assert tags(client, path, "page=0&limit=0").json()["page"] == 1
    assert len(tags(client, path, "limit=0").json()["tags"]) == 1
    assert len(tags(client, path, "limit=1000").json()["tags"]) == 10
    bad = tags(client, path, "page=abc")
    assert bad.status_code == 400 and set(bad.json()["message"]) == {"page"}
    assert tags(client, path, "limit=x").json()["message"].keys() == {"limit"}


def test_change_tag_create_move_and_errors(cast: Cast, history: dict) -> None:
    path = history["path"]
    url = f"/api/v1/repository/{path}/tag"
    writer = cast.clients["writer"]
    created = writer.put(f"{url}/newtag", json={"manifest_digest": history["m2"]})
    assert created.status_code == 201 and created.json() == "Updated"
    entry = last_audit(cast.server, "create_tag")
    assert entry["tag"] == "newtag" and entry["original_manifest_digest"] is None
    assert entry["username"] == cast.users["writer"].username
    moved = writer.put(f"{url}/newtag", json={"manifest_digest": history["m3"]})
    assert moved.status_code == 201
    entry = last_audit(cast.server, "move_tag")
    assert entry["manifest_digest"] == history["m3"]
    assert entry["original_manifest_digest"] == history["m2"]
    for name in ("-INVALID", ".INVALID", "x" * 129, "北京"):
        bad = writer.put(f"{url}/{name}", json={"manifest_digest": history["m1"]})
        assert bad.status_code == 400
        assert bad.json()["message"].startswith("Invalid tag: must match")
    assert writer.put(f"{url}/x", json={"manifest_digest": "sha256:" + "0" * 64}).status_code == 404
    assert writer.put(f"{url}/x", json={"manifest_digest": "not-a-digest"}).status_code == 404
    # Only manifests reachable from an alive tag may be tagged; restore accepts the rest.
    assert writer.put(f"{url}/x", json={"manifest_digest": history["dead"]}).status_code == 404
    assert writer.put(f"{url}/x", json={}).status_code == 201
    assert (
        cast.clients["reader"].put(f"{url}/x", json={"manifest_digest": history["m1"]}).status_code
        == 403
    )
    assert cast.clients["stranger"].delete(f"{url}/unknown").status_code == 403
    assert cast.clients["reader"].delete(f"{url}/unknown").status_code == 403
    assert cast.clients["owner"].delete(f"{url}/unknown").status_code == 404
    assert cast.clients["anonymous"].delete(f"{url}/unknown").status_code == 403


def test_expiration_clamping(cast: Cast, history: dict) -> None:
    path = history["path"]
    url = f"/api/v1/repository/{path}/tag/stable"
    writer = cast.clients["writer"]

    def current() -> dict:
        rows = tags(writer, path, "specificTag=stable&onlyActiveTags=true").json()["tags"]
        assert len(rows) == 1
        return rows[0]

    start = current()["start_ts"]
    day = start + 86400
    assert writer.put(url, json={"expiration": day}).status_code == 201
    assert current()["end_ts"] == day
    entry = last_audit(cast.server, "change_tag_expiration")
    assert entry["expiration_date"] == day and entry["old_expiration_date"] is None
    soon = int(time.time()) + 5
    assert writer.put(url, json={"expiration": soon}).status_code == 201
    assert current()["end_ts"] == start + 3600
    far = start + 300 * 7 * 86400
    assert writer.put(url, json={"expiration": far}).status_code == 201
    assert current()["end_ts"] == start + 104 * 7 * 86400
    past = writer.put(url, json={"expiration": time.time() - 10})
    assert past.status_code == 400 and "could not understand" in past.json()["message"]
    assert writer.put(url, json={"expiration": "tomorrow"}).status_code == 400
    assert current()["end_ts"] == start + 104 * 7 * 86400
    assert writer.put(url, json={"expiration": None}).status_code == 201
    assert "end_ts" not in current() and "expiration" not in current()
    assert last_audit(cast.server, "change_tag_expiration")["old_expiration_date"] is not None
    missing = writer.put(f"/api/v1/repository/{path}/tag/ghost", json={"expiration": day})
    assert missing.status_code == 404


def test_delete_and_restore(cast: Cast, history: dict) -> None:
    path = history["path"]
    url = f"/api/v1/repository/{path}/tag"
    writer = cast.clients["writer"]
    writer.put(f"{url}/cycle", json={"manifest_digest": history["m1"]})
    writer.put(f"{url}/cycle", json={"manifest_digest": history["m2"]})
    assert writer.delete(f"{url}/cycle").status_code == 204
    assert last_audit(cast.server, "delete_tag")["tag"] == "cycle"
    assert writer.delete(f"{url}/cycle").status_code == 404
    assert tags(writer, path, "specificTag=cycle&onlyActiveTags=true").json()["tags"] == []
    rows = tags(writer, path, "specificTag=cycle").json()["tags"]
    assert [r["manifest_digest"] for r in rows] == [history["m2"], history["m1"]]
    assert all("end_ts" in r for r in rows)

    restore = f"{url}/cycle/restore"
    assert writer.post(restore, json={}).json()["detail"] == "Missing manifest_digest"
    assert writer.post(restore, json={"manifest_digest": 5}).status_code == 400
    assert writer.post(restore, json={"manifest_digest": "invalid_digest"}).status_code == 404
    other = make_repository(cast.server, cast.owner.username)
    foreign = add_manifest(cast.server, other)
    assert writer.post(restore, json={"manifest_digest": foreign}).status_code == 404
    assert (
        cast.clients["reader"].post(restore, json={"manifest_digest": history["m1"]}).status_code
        == 403
    )
    restored = writer.post(restore, json={"manifest_digest": history["m1"]})
    assert restored.status_code == 200 and restored.json() == {}
    entry = last_audit(cast.server, "revert_tag")
    assert entry == {
        "username": cast.users["writer"].username,
        "repo": path.split("/")[1],
        "tag": "cycle",
        "manifest_digest": history["m1"],
        "oauth_token_id": entry["oauth_token_id"],
    }
    rows = tags(writer, path, "specificTag=cycle").json()["tags"]
    assert len(rows) == 3
    assert rows[0]["manifest_digest"] == history["m1"] and rows[0]["reversion"] is True
    assert "end_ts" not in rows[0]
    # A manifest no alive tag references can still be restored while it is stored.
    dead = writer.post(f"{url}/zombie/restore", json={"manifest_digest": history["dead"]})
    assert dead.status_code == 200
    zombie = tags(writer, path, "specificTag=zombie&onlyActiveTags=true").json()["tags"]
    assert zombie[0]["manifest_digest"] == history["dead"]


def test_expire_route_absent_by_default(cast: Cast, history: dict) -> None:
    url = f"/api/v1/repository/{history['path']}/tag/latest/expire"
    response = cast.clients["writer"].post(url, json={"is_alive": True})
    assert response.status_code == 404


def test_time_machine_expiry(server_factory) -> None:
    # Rows pushed out of the time machine must still be listed when the test looks.
    live = server_factory({"PERMANENTLY_DELETE_TAGS": True, "FEATURE_GARBAGE_COLLECTION": False})
    owner = create_user(live)
    path = make_repository(live, owner.username)
    m1, m2 = add_manifest(live, path), add_manifest(live, path)
    tag_manifest(live, path, "v", m1)
    tag_manifest(live, path, "v", m2)
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        url = f"/api/v1/repository/{path}/tag/v/expire"
        assert client.post(url, json={}).json()["detail"] == (
            "manifest_digest required when is_alive set to false"
        )
        assert client.post(url, json={"manifest_digest": "sha256:" + "1" * 64}).status_code == 404
        ended = client.post(url, json={"manifest_digest": m1})
        assert ended.status_code == 200 and ended.json() == ""
        window = 1209600
        rows = tags(client, path, "specificTag=v").json()["tags"]
        old = next(r for r in rows if r["manifest_digest"] == m1)
        assert old["end_ts"] < time.time() - window
        assert client.post(url, json={"manifest_digest": m1}).status_code == 404
        alive = client.post(url, json={"is_alive": True})
        assert alive.status_code == 200
        assert tags(client, path, "onlyActiveTags=true").json()["tags"] == []
        assert last_audit(live, "permanently_delete_tag")["tag"] == "v"


def test_immutable_tags(server_factory) -> None:
    live = server_factory()
    owner = create_user(live)
    writer = create_user(live)
    path = make_repository(live, owner.username)
    grant(live, path, writer.username, "write")
    m1, m2 = add_manifest(live, path), add_manifest(live, path)
    tag_manifest(live, path, "v", m1)
    tag_manifest(live, path, "other", m2)
    url = f"/api/v1/repository/{path}/tag"
    with (
        bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as admin_client,
        bearer_client(live, issue_token(live, writer.username, ALL_SCOPES)) as client,
    ):
        assert all(row["immutable"] is False for row in tags(client, path).json()["tags"])
        assert client.put(f"{url}/v", json={"immutable": True}).status_code == 201
        assert client.put(f"{url}/v", json={"immutable": True}).status_code == 201
        entry = last_audit(live, "change_tag_immutability")
        assert entry["immutable"] is True and entry["previous_immutable"] is False
        current = tags(client, path, "specificTag=v").json()["tags"]
        assert current[0]["immutable"] is True
        for response in (
            client.delete(f"{url}/v"),
            client.put(f"{url}/v", json={"manifest_digest": m2}),
            client.post(f"{url}/v/restore", json={"manifest_digest": m2}),
        ):
            assert response.status_code == 409
            assert response.json()["error_type"] == "tag_immutable"
            assert response.json()["title"] == "tag_immutable"
        assert client.put(f"{url}/v", json={"immutable": False}).status_code == 403
        assert client.put(f"{url}/ghost", json={"immutable": True}).status_code == 404
        assert admin_client.put(f"{url}/v", json={"immutable": False}).status_code == 201
        assert client.put(f"{url}/v", json={"manifest_digest": m2}).status_code == 201
        active = tags(client, path, "specificTag=v&onlyActiveTags=true").json()["tags"]
        assert [row["manifest_digest"] for row in active] == [m2]
