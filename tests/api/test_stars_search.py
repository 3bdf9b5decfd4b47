"""Stars (createStar, listStarredRepos, deleteStar) and search (repositories, entities)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Repository
from cargohold.domain import repositories
from tests.support.accounts import bearer_client, create_organization, issue_token, unique
from tests.support.content import make_repository
from tests.support.repos import Cast, create_robot, grant


def _star(client: httpx.Client, path: str) -> httpx.Response:
    namespace, name = path.split("/", 1)
    return client.post("/api/v1/user/starred", json={"namespace": namespace, "repository": name})


def _starred_names(client: httpx.Client) -> list[str]:
    listed = client.get("/api/v1/user/starred")
    assert listed.status_code == 200
    return [f"{r['namespace']}/{r['name']}" for r in listed.json()["repositories"]]


def _stored_stars(cast: Cast, username: str) -> set[str]:
    with cast.server.db() as session:
        user = session.scalar(select(User).where(User.username == username))
        return {
            f"{repo.namespace_user.username}/{repo.name}"
            for repo in session.scalars(
                repositories.starred_by(select(Repository), user).where(
                    Repository.deleted.is_(False)
                )
            )
        }


def test_star_lifecycle(cast: Cast) -> None:
    public = make_repository(cast.server, cast.owner.username, public=True)
    client = cast.clients["reader"]
    assert client.get("/api/v1/user/starred").json() == {"repositories": []}
    namespace, name = public.split("/")
    created = _star(client, public)
    assert created.status_code == 201
    assert created.json() == {"namespace": namespace, "repository": name}
    assert _star(client, public).status_code == 201
    assert client.get("/api/v1/user/starred").json() == {
        "repositories": [
            {"namespace": namespace, "name": name, "description": None, "is_public": True}
        ]
    }
    starred = client.get("/api/v1/repository?starred=true").json()["repositories"]
    assert [(r["name"], r["is_starred"]) for r in starred] == [(name, True)]
    assert client.get(f"/api/v1/repository/{public}").json()["is_starred"] is True
    assert client.delete(f"/api/v1/user/starred/{public}").status_code == 204
    assert client.delete(f"/api/v1/user/starred/{public}").status_code == 204
    gone = client.delete(f"/api/v1/user/starred/{namespace}/zz")
    assert gone.status_code == 200 and gone.json() is None
    assert _starred_names(client) == []


def test_stranger_cannot_tell_private_from_missing(cast: Cast) -> None:
    """Starring or unstarring a private repository answers what a missing one answers."""
    owner = cast.owner.username
    public = make_repository(cast.server, owner, public=True)
    private = make_repository(cast.server, owner)
    described = cast.clients["owner"].put(
        f"/api/v1/repository/{private}", json={"description": "secret plans"}
    )
    assert described.status_code == 200
    missing = f"{owner}/{unique('nothere')}"
    stranger = cast.clients["stranger"]

    on_missing, on_private = _star(stranger, missing), _star(stranger, private)
    assert on_missing.status_code == 200 and on_missing.json() is None
    assert (on_private.status_code, on_private.content) == (
        on_missing.status_code,
        on_missing.content,
    )
    assert on_private.headers["content-type"] == on_missing.headers["content-type"]
    assert _star(stranger, public).status_code == 201

    unstar_missing = stranger.delete(f"/api/v1/user/starred/{missing}")
    unstar_private = stranger.delete(f"/api/v1/user/starred/{private}")
    assert unstar_missing.status_code == 200 and unstar_missing.json() is None
    assert (unstar_private.status_code, unstar_private.content) == (200, unstar_missing.content)

    assert _stored_stars(cast, cast.users["stranger"].username) == {public}
    assert _starred_names(stranger) == [public]
    via_repository = stranger.get("/api/v1/repository?starred=true").json()["repositories"]
    assert [f"{r['namespace']}/{r['name']}" for r in via_repository] == [public]
    assert "secret plans" not in stranger.get("/api/v1/user/starred").text


def test_starred_lists_follow_lost_access(cast: Cast) -> None:
    """Stars on repositories the caller can no longer read drop out of every list."""
    owner = cast.owner.username
    owner_client = cast.clients["owner"]
    shared = make_repository(cast.server, owner)
    hidden_later = make_repository(cast.server, owner, public=True)
    reader_name = cast.users["writer"].username
    grant(cast.server, shared, reader_name, "read")
    reader = cast.clients["writer"]
    assert _star(reader, shared).status_code == 201
    assert _star(reader, hidden_later).status_code == 201
    assert sorted(_starred_names(reader)) == sorted([shared, hidden_later])

    revoked = owner_client.delete(f"/api/v1/repository/{shared}/permissions/user/{reader_name}")
    assert revoked.status_code == 204
    made_private = owner_client.post(
        f"/api/v1/repository/{hidden_later}/changevisibility", json={"visibility": "private"}
    )
    assert made_private.status_code == 200

    assert _starred_names(reader) == []
    assert reader.get("/api/v1/repository?starred=true").json()["repositories"] == []
    assert reader.get(f"/api/v1/repository/{shared}").status_code == 403
    # The stars are kept: access regained shows the repository again.
    assert _stored_stars(cast, reader_name) == {shared, hidden_later}
    grant(cast.server, shared, reader_name, "read")
    assert _starred_names(reader) == [shared]


def test_star_auth_and_body(cast: Cast) -> None:
    anonymous = cast.clients["anonymous"]
    assert anonymous.get("/api/v1/user/starred").status_code == 401
    assert anonymous.get("/api/v1/repository?starred=true").status_code == 400
    read_only = bearer_client(
        cast.server, issue_token(cast.server, cast.users["reader"].username, "repo:read user:read")
    )
    with read_only:
        assert read_only.get("/api/v1/user/starred").status_code == 403
        refused = read_only.post(
            "/api/v1/user/starred", json={"namespace": cast.owner.username, "repository": "x"}
        )
        assert refused.status_code == 403
    missing = cast.clients["reader"].post("/api/v1/user/starred", json={"namespace": "x"})
    assert missing.status_code == 400
    assert "'repository' is a required property" in missing.json()["detail"]


def test_starred_list_pages_past_99(cast: Cast) -> None:
    user = cast.users["admin"]
    with cast.server.db() as session:
        owner = session.scalar(select(User).where(User.username == cast.owner.username))
        me = session.scalar(select(User).where(User.username == user.username))
        for number in range(120):
            repo = repositories.create_repository(
                session, owner, f"starme{number:03d}", public=True, description=None, creator=None
            )
            repositories.star(session, me, repo)
    client = cast.clients["admin"]
    first = client.get("/api/v1/user/starred").json()
    assert len(first["repositories"]) == 100 and "next_page" in first
    second = client.get("/api/v1/user/starred?next_page=" + first["next_page"]).json()
    assert len(second["repositories"]) >= 20 and "next_page" not in second
    via_repository = client.get("/api/v1/repository?starred=true").json()
    assert len(via_repository["repositories"]) == 100 and "next_page" in via_repository


def test_repository_search_shows_only_readable(cast: Cast) -> None:
    owner = cast.owner.username
    public = make_repository(cast.server, owner, "searchable-public", public=True)
    private = make_repository(cast.server, owner, "searchable-private")
    grant(cast.server, private, cast.users["reader"].username, "read")

    def found(caller: str) -> dict:
        response = cast.clients[caller].get("/api/v1/find/repositories?query=searchable")
        assert response.status_code == 200
        return response.json()

    stranger = found("stranger")
    assert [r["name"] for r in stranger["results"]] == ["searchable-public"]
    assert stranger["page"] == 1 and stranger["page_size"] == 10
    assert stranger["start_index"] == 0 and stranger["has_additional"] is False
    result = stranger["results"][0]
    assert result == {
        "kind": "repository",
        "title": "repo",
        "namespace": {
            "title": "user",
            "kind": "user",
            "avatar": result["namespace"]["avatar"],
            "name": owner,
            "score": 1,
            "href": f"/user/{owner}",
        },
        "name": "searchable-public",
        "description": None,
        "is_public": True,
        "score": 4,
        "href": f"/repository/{public}",
        "stars": 0,
    }
    assert [r["name"] for r in found("anonymous")["results"]] == ["searchable-public"]
    assert {r["name"] for r in found("reader")["results"]} == {
        "searchable-public",
        "searchable-private",
    }
    assert {r["name"] for r in found("owner")["results"]} >= {"searchable-private"}
    usage = (
        cast.clients["owner"]
        .get("/api/v1/find/repositories?query=searchable&includeUsage=true")
        .json()
    )
    assert all(isinstance(r["popularity"], float) for r in usage["results"])
    assert cast.clients["owner"].get("/api/v1/find/repositories?page=x").status_code == 400


def test_entity_search(cast: Cast) -> None:
    owner = cast.owner.username
    robot, _ = create_robot(cast.server, owner, "finder")
    client = cast.clients["owner"]
    people = client.get(f"/api/v1/entities/{owner[:6]}?namespace={owner}").json()["results"]
    assert owner in {entry["name"] for entry in people}
    # Robots match on their short name.
    mine = client.get(f"/api/v1/entities/fin?namespace={owner}").json()["results"]
    assert robot in {entry["name"] for entry in mine}
    robot_entry = next(entry for entry in mine if entry["name"] == robot)
    assert robot_entry["kind"] == "user" and robot_entry["is_robot"] is True
    assert "is_org_member" not in robot_entry
    # Robots of a namespace are listed only to that namespace's owner.
    other = cast.clients["stranger"].get(f"/api/v1/entities/fin?namespace={owner}")
    assert robot not in {entry["name"] for entry in other.json()["results"]}

    org = create_organization(cast.server, cast.owner)
    org_robot, _ = create_robot(cast.server, org, "orgbot")
    with_teams = client.get(
        f"/api/v1/entities/o?namespace={org}&includeTeams=true&includeOrgs=true"
    ).json()["results"]
    team = next(entry for entry in with_teams if entry["kind"] == "team")
    assert team["name"] == "owners" and team["is_org_member"] is True
    assert team["avatar"]["kind"] == "team"
    robots = client.get(f"/api/v1/entities/orgb?namespace={org}").json()["results"]
    org_robot_entry = next(entry for entry in robots if entry["name"] == org_robot)
    assert org_robot_entry["is_org_member"] is True
    orgs = client.get(f"/api/v1/entities/{org[:4]}?namespace={org}&includeOrgs=true").json()
    org_entry = next(entry for entry in orgs["results"] if entry["kind"] == "org")
    assert org_entry["name"] == org and org_entry["is_org_member"] is True
    assert org_entry["avatar"]["kind"] == "org"
    outsider = (
        cast.clients["stranger"]
        .get(f"/api/v1/entities/o?namespace={org}&includeTeams=true&includeOrgs=true")
        .json()["results"]
    )
    assert all(entry["kind"] == "user" for entry in outsider)
    assert org_robot not in {entry["name"] for entry in outsider}
    stranger_name = cast.users["stranger"].username
    member_view = client.get(f"/api/v1/entities/{stranger_name}?namespace={org}").json()
    assert member_view["results"][0]["is_org_member"] is False
