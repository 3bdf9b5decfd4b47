"""Stars (createStar, listStarredRepos, deleteStar) and search (repositories, entities)."""

from __future__ import annotations

from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.domain import repositories
from tests.support.accounts import (
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.content import make_repository
from tests.support.repos import Cast, create_robot, grant


def test_star_lifecycle(cast: Cast) -> None:
    public = make_repository(cast.server, cast.owner.username, public=True)
    private = make_repository(cast.server, cast.owner.username)
    client = cast.clients["stranger"]
    assert client.get("/api/v1/user/starred").json() == {"repositories": []}
    namespace, name = public.split("/")
    created = client.post("/api/v1/user/starred", json={"namespace": namespace, "repository": name})
    assert created.status_code == 201
    assert created.json() == {"namespace": namespace, "repository": name}
    again = client.post("/api/v1/user/starred", json={"namespace": namespace, "repository": name})
    assert again.status_code == 201
    assert client.get("/api/v1/user/starred").json() == {
        "repositories": [
            {"namespace": namespace, "name": name, "description": None, "is_public": True}
        ]
    }
    starred = client.get("/api/v1/repository?starred=true").json()["repositories"]
    assert [(r["name"], r["is_starred"]) for r in starred] == [(name, True)]
    assert client.get(f"/api/v1/repository/{public}").json()["is_starred"] is True
    # A private repository can be starred but /repository?starred=true hides what is unreadable.
    private_name = private.split("/")[1]
    client.post("/api/v1/user/starred", json={"namespace": namespace, "repository": private_name})
    assert len(client.get("/api/v1/user/starred").json()["repositories"]) == 2
    assert len(client.get("/api/v1/repository?starred=true").json()["repositories"]) == 1
    unknown = client.post("/api/v1/user/starred", json={"namespace": namespace, "repository": "zz"})
    assert unknown.status_code == 200 and unknown.json() is None
    assert client.delete(f"/api/v1/user/starred/{public}").status_code == 204
    assert client.delete(f"/api/v1/user/starred/{public}").status_code == 204
    gone = client.delete(f"/api/v1/user/starred/{namespace}/zz")
    assert gone.status_code == 200 and gone.json() is None
    assert [r["name"] for r in client.get("/api/v1/user/starred").json()["repositories"]] == [
        private_name
    ]


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


def test_entity_search_lists_disabled_users_as_quay_does(cast: Cast) -> None:
    disabled = create_user(cast.server, unique("sleeper"))
    with cast.server.db() as session:
        session.get(User, disabled.id).enabled = False
    owner = cast.owner.username
    found = cast.clients["owner"].get(f"/api/v1/entities/sleeper?namespace={owner}")
    assert found.status_code == 200
    entry = next(e for e in found.json()["results"] if e["name"] == disabled.username)
    assert entry["kind"] == "user" and entry["is_robot"] is False
    # Deleted accounts stay hidden.
    with cast.server.db() as session:
        session.get(User, disabled.id).deleted = True
    gone = cast.clients["owner"].get(f"/api/v1/entities/{disabled.username}?namespace={owner}")
    assert disabled.username not in {e["name"] for e in gone.json()["results"]}
