"""The superuser panel's change log: this release's notes, in Quay's `{"log": markdown}` shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cargohold.api.deps import AuthDep, SettingsDep, require_fresh_login
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_superuser_feature, require_superuser_reader

router = ApiRouter(tags=["superuser"])

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


@router.get("/api/v1/superuser/changelog/", operation_id="getChangeLog")
def get_changelog(auth: AuthDep, settings: SettingsDep) -> dict[str, Any]:
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    require_superuser_reader(auth)
    return {"log": CHANGELOG.read_text(encoding="utf-8")}
