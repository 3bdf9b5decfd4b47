"""The web UI: a single page over /api/v1, served from package files (no build step)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/confirminvite")
def confirm_invite(code: str = "") -> RedirectResponse:
    """The link in team invitation emails opens the invitation page of the UI."""
    return RedirectResponse(f"/#/confirminvite?code={quote(code, safe='')}", status_code=302)


@router.get("/repository/{repository:path}/trigger/{trigger_uuid}")
def trigger_page(repository: str, trigger_uuid: str) -> RedirectResponse:
    """Quay's trigger page, where /customtrigger/setup sends the browser: the triggers tab."""
    return RedirectResponse(
        f"/#/repository/{quote(repository, safe='/')}?tab=triggers", status_code=302
    )


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
