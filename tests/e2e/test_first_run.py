"""A new installation end to end: first user, sign-in, organization, robot, OAuth app, token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.sessions import csrf_client, signin

PASSWORD = "first-password-1"


def test_first_run_to_a_scoped_token(server_factory) -> None:
    live = server_factory()
    initialized = httpx.post(
        f"{live.url}/api/v1/user/initialize",
        json={"username": "admin", "password": PASSWORD, "email": "admin@example.com"},
    )
    assert initialized.status_code == 200, initialized.text
    assert initialized.json()["username"] == "admin"

    with csrf_client(live) as browser:
        assert signin(browser, "admin", PASSWORD).status_code == 200
        created = browser.post("/api/v1/organization/", json={"name": "acme"})
        assert created.status_code == 201, created.text

        robot = browser.put("/api/v1/organization/acme/robots/deployer", json={})
        assert robot.status_code == 201, robot.text
        assert robot.json()["name"] == "acme+deployer"
        assert robot.json()["token"]

        app = browser.post(
            "/api/v1/organization/acme/applications",
            json={"name": "automation", "redirect_uri": "https://ci.example/cb"},
        )
        assert app.status_code == 200, app.text
        client_id = app.json()["client_id"]

        redirect_uri = f"{live.url}/oauth/localapp"
        granted = browser.post(
            "/oauth/authorizeapp",
            data={
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "user:read repo:read",
                "response_type": "token",
                "_csrf_token": browser.headers["X-CSRF-Token"],
            },
        )
    assert granted.status_code == 302, granted.text
    location = urlsplit(granted.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    token = parse_qs(location.fragment)["access_token"][0]
    assert len(token) == 40

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as api:
        me = api.get("/api/v1/user/")
        assert me.status_code == 200
        assert me.json()["username"] == "admin"
        # Beyond user:read and repo:read: organization and superuser administration.
        for response in (
            api.post("/api/v1/organization/", json={"name": "other"}),
            api.put("/api/v1/organization/acme/robots/another", json={}),
            api.put("/api/v1/organization/acme", json={"tag_expiration_s": 0}),
            api.get("/api/v1/organization/acme/applications"),
            api.get("/api/v1/superuser/registrysize/"),
        ):
            assert response.status_code == 403, response.request.url
            assert response.json()["error_type"] == "insufficient_scope"
        assert api.get("/api/v1/organization/other").status_code == 404
