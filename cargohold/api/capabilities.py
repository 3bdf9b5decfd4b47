"""Registry capabilities (Quay's capabilities.py), probed by clients and Quay's UI."""

from __future__ import annotations

from typing import Any

from cargohold.api.deps import AuthDep, SettingsDep
from cargohold.api.routing import ApiRouter
from cargohold.domain.mirror import ARCHITECTURES

router = ApiRouter(tags=["capabilities"])


@router.get("/api/v1/registry/capabilities", operation_id="getRegistryCapabilities")
def get_capabilities(auth: AuthDep, settings: SettingsDep) -> dict[str, Any]:
    sparse = settings.FEATURE_SPARSE_INDEX
    return {
        "sparse_manifests": {
            "supported": sparse,
            "required_architectures": [],
            "optional_architectures_allowed": sparse,
        },
        "mirror_architectures": sorted(ARCHITECTURES),
    }
