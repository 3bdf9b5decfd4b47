"""The web UI: cargohold's own single page over /api/v1, or a built UI folder (WEB_UI_PATH).

cargohold's UI is served from package files (no build step). A built single-page UI such as
Quay's is served from WEB_UI_PATH instead: its files where they exist, and its index.html
for every other path so that the UI's own history routes (/organization/x, /repository/y)
load on a reload or a bookmark.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.convertors import Convertor, register_url_convertor

import cargohold.api.routing  # noqa: F401  (registers the repopath convertor used below)
from cargohold.config import Settings

STATIC_DIR = Path(__file__).parent / "static"


class UiPathConvertor(Convertor[str]):
    """Any path except those that belong to the server: an unknown API path stays a 404."""

    regex = r"(?!(?:api|v1|v2|oauth|oauth2|keys|\.well-known)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("ui_path", UiPathConvertor())

router = APIRouter(include_in_schema=False)


@router.get("/confirminvite")
def confirm_invite(code: str = "") -> RedirectResponse:
    """The link in team invitation emails opens the invitation page of the UI."""
    return RedirectResponse(f"/#/confirminvite?code={quote(code, safe='')}", status_code=302)


def _index(root: Path) -> FileResponse:
    return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


def index_page(settings: Settings) -> FileResponse:
    """The UI's page (cargohold's own or the built one), for routes that answer with it."""
    return _index(Path(settings.WEB_UI_PATH).resolve() if settings.WEB_UI_PATH else STATIC_DIR)


def own_ui_router() -> APIRouter:
    own = APIRouter(include_in_schema=False)

    @own.get("/")
    def index() -> FileResponse:
        return _index(STATIC_DIR)

    @own.get("/favicon.ico")
    def favicon() -> FileResponse:
        """Browsers ask for /favicon.ico whatever the page links: the same icon answers."""
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @own.get("/repository/{repository:repopath}/trigger/{trigger_uuid}")
    def trigger_page(repository: str, trigger_uuid: str) -> RedirectResponse:
        """Quay's trigger page, where /customtrigger/setup sends the browser: the triggers tab."""
        return RedirectResponse(
            f"/#/repository/{quote(repository, safe='/')}?tab=triggers", status_code=302
        )

    return own


def built_ui_router(root: Path) -> APIRouter:
    """Files of a built UI, with the history-route fallback to its index.html."""
    root = root.resolve()
    built = APIRouter(include_in_schema=False)

    @built.api_route("/{path:ui_path}", methods=["GET", "HEAD"])
    def ui_file(path: str) -> FileResponse:
        candidate = (root / path).resolve()
        # A path that leaves the folder (../, a symlink out) is treated as a UI route.
        if path and candidate.is_relative_to(root) and candidate.is_file():
            return FileResponse(candidate)
        return _index(root)

    return built


def mount(app: FastAPI, settings: Settings) -> None:
    """Mounted last: every API and protocol route is matched before the UI's catch-all."""
    app.include_router(router)
    if settings.WEB_UI_PATH:
        app.include_router(built_ui_router(Path(settings.WEB_UI_PATH)))
        return
    app.include_router(own_ui_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
