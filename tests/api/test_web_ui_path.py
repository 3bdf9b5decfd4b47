"""WEB_UI_PATH: a built single-page UI served at / in place of cargohold's own, with the API
and the registry protocol still answered by cargohold."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cargohold.config import ConfigError, load_settings

INDEX = "<!doctype html><title>stand-in UI</title><div id=root></div>"
BUNDLE = "console.log('stand-in bundle');"


@pytest.fixture
def built_ui(tmp_path: Path) -> Path:
    root = tmp_path / "ui"
    (root / "static" / "js").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "static" / "js" / "main.js").write_text(BUNDLE)
    (tmp_path / "private.txt").write_text("outside the UI folder")
    (root / "escape.txt").symlink_to(tmp_path / "private.txt")
    return root


def test_built_ui_is_served_with_history_fallback(server_factory, built_ui: Path) -> None:
    live = server_factory({"WEB_UI_PATH": str(built_ui)})
    with httpx.Client(base_url=live.url) as client:
        index = client.get("/")
        assert index.status_code == 200
        assert index.text == INDEX
        assert index.headers["cache-control"] == "no-cache"
        bundle = client.get("/static/js/main.js")
        assert bundle.text == BUNDLE
        assert "javascript" in bundle.headers["content-type"]
        # The UI's own routes load index.html on a reload or a bookmark.
        for route in ("/organization/acme", "/repository/acme/app/tag/v1", "/superuser"):
            page = client.get(route)
            assert page.status_code == 200
            assert page.text == INDEX
        # cargohold's own UI files are not served any more.
        assert client.get("/static/js/app.js").text == INDEX


def test_api_and_registry_pass_through_the_ui(server_factory, built_ui: Path) -> None:
    live = server_factory({"WEB_UI_PATH": str(built_ui)})
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/api/v1/messages").json() == {"messages": []}
        assert client.get("/config").json()["config"]["SERVER_HOSTNAME"] == live.host
        assert client.get("/csrf_token").json()["csrf_token"]
        # Unknown server paths stay errors instead of turning into the UI page.
        for path in ("/api/v1/no-such-thing", "/api", "/oauth/nothing", "/.well-known/nothing"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert INDEX not in response.text
        assert client.get("/v2/").status_code == 401
        assert client.options("/api/v1/messages").headers["allow"] == "GET, HEAD, OPTIONS, POST"
        assert client.post("/organization/acme").status_code == 405


def test_paths_out_of_the_ui_folder_are_never_served(server_factory, built_ui: Path) -> None:
    live = server_factory({"WEB_UI_PATH": str(built_ui)})
    with httpx.Client(base_url=live.url) as client:
        for raw_path in (b"/..%2fprivate.txt", b"/static/..%2f..%2fprivate.txt", b"/escape.txt"):
            request = client.build_request("GET", live.url)
            request.url = request.url.copy_with(raw_path=raw_path)
            response = client.send(request)
            assert "outside the UI folder" not in response.text, raw_path
            assert response.text == INDEX
        config = client.get("/..%2fconfig.yaml")
        assert "SERVER_HOSTNAME" not in config.text


def test_own_ui_stays_the_default(anon_client: httpx.Client) -> None:
    index = anon_client.get("/")
    assert index.status_code == 200
    assert "/static/js/app.js" in index.text
    assert anon_client.get("/organization/acme").status_code == 404


def test_a_folder_without_index_html_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    environ = {"CARGOHOLD_WEB_UI_PATH": str(tmp_path / "empty")}
    with pytest.raises(ConfigError, match="WEB_UI_PATH"):
        load_settings(tmp_path, environ={**environ, "CARGOHOLD_DATA_DIR": str(tmp_path / "d")})


def test_documented_logo_setup_reaches_the_ui(server_factory, built_ui: Path) -> None:
    # Quay's build has no logo of its own; the README copies one into the folder and names it.
    logo = '<svg xmlns="http://www.w3.org/2000/svg"/>'
    (built_ui / "logo.svg").write_text(logo)
    live = server_factory({"WEB_UI_PATH": str(built_ui), "BRANDING": {"logo": "/logo.svg"}})
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/config").json()["config"]["BRANDING"] == {"logo": "/logo.svg"}
        served = client.get("/logo.svg")
        assert served.status_code == 200
        assert served.text == logo
        assert served.headers["content-type"] == "image/svg+xml"
