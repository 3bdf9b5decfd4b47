"""The client bootstrap document that Quay's web UI reads from /config.

Only values on the public list below ever leave the server. The list is Quay's, so the UI
finds every key it looks for; nothing is copied from the settings wholesale.
"""

from __future__ import annotations

from typing import Any

from cargohold import __version__
from cargohold.config import Settings

# Quay's public configuration keys that always have a value (Quay's defaults where
# cargohold has no setting of its own).
_QUAY_FIXED_PUBLIC: dict[str, Any] = {
    "LOCAL_OAUTH_HANDLER": "/oauth/localapp",
    "SENTRY_PUBLIC_DSN": None,
    "STATIC_SITE_BUCKET": None,
    "UI_V2_FEEDBACK_FORM": None,
    "DEFAULT_UI": "react",
    "DISABLE_ANGULAR_UI": False,
    "DEFAULT_NAMESPACE_AUTOPRUNE_POLICY": None,
    "CHANNEL_COLORS": [
        "#969696", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
        "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
        "#7f7f7f", "#c7c7c7", "#bcbd22", "#1f77b4", "#17becf",
    ],
}  # fmt: skip

# Public keys whose value is a cargohold setting.
_SETTINGS_PUBLIC = (
    "SERVER_HOSTNAME",
    "PREFERRED_URL_SCHEME",
    "AUTHENTICATION_TYPE",
    "REGISTRY_TITLE",
    "REGISTRY_TITLE_SHORT",
    "CONTACT_INFO",
    "AVATAR_KIND",
    "TAG_EXPIRATION_OPTIONS",
    "SEARCH_RESULTS_PER_PAGE",
    "SEARCH_MAX_RESULT_PAGE_COUNT",
    "DOCUMENTATION_ROOT",
    "QUOTA_BACKFILL",
    "PERMANENTLY_DELETE_TAGS",
    "FOOTER_LINKS",
    "UI_DELAY_AFTER_WRITE_SECONDS",
)

# Feature flags Quay also lists among its public keys (with their prefix).
_PUBLIC_FEATURES = (
    "REPO_MIRROR",
    "ORG_MIRROR",
    "QUOTA_MANAGEMENT",
    "QUOTA_NOTIFICATIONS",
    "EDIT_QUOTA",
    "PROXY_CACHE",
    "ASSIGN_OAUTH_TOKEN",
    "IMAGE_EXPIRY_TRIGGER",
    "AUTO_PRUNE",
    "IMMUTABLE_TAGS_CAN_EXPIRE",
)

# Quay's feature flags that cargohold has no setting for, with the value that describes
# what cargohold does: it always serves /v2 and OCI artifacts such as Helm charts, and it
# has none of the others.
_FIXED_FEATURES: dict[str, bool] = {
    "ADVERTISE_V2": True,
    "HELM_OCI_SUPPORT": True,
    **dict.fromkeys(
        (
            "ACTION_LOG_ROTATION", "ASSIGN_OAUTH_TOKEN", "AUTO_PRUNE", "BILLING",
            "BLACKLISTED_EMAILS", "CLEAR_EXPIRED_RAC_ENTRIES", "DISABLE_PULL_LOGS_FOR_FREE_NAMESPACES",
            "ENABLE_STALE_MPU_CLEANUP", "ENTITLEMENT_RECONCILIATION", "EXPORT_COMPLIANCE",
            "EXTENDED_ACTION_LOGGING", "FIPS", "GITHUB_LOGIN", "GOOGLE_LOGIN",
            "IMAGE_EXPIRY_TRIGGER", "IMAGE_PULL_STATS", "IMMUTABLE_TAGS_CAN_EXPIRE",
            "MANIFEST_SIZE_BACKFILL", "MANIFEST_SUBJECT_BACKFILL", "NAMESPACE_GARBAGE_COLLECTION",
            "NONSUPERUSER_TEAM_SYNCING_SETUP", "ORG_MIRROR", "OTEL_TRACING",
            "PROGRAMMATIC_BOOTSTRAP", "PROXY_CACHE", "PROXY_CACHE_BLOB_DOWNLOAD",
            "QUOTA_NOTIFICATIONS", "QUOTA_SUPPRESS_FAILURES", "RATE_LIMITS", "RECAPTCHA",
            "REPOSITORY_ACTION_COUNTER", "REPOSITORY_GARBAGE_COLLECTION",
            "REQUIRE_ENCRYPTED_BASIC_AUTH", "RESTRICTED_USERS", "RESTRICTED_V1_PUSH",
            "RH_MARKETPLACE", "SECURITY_NOTIFICATIONS", "SECURITY_SCANNER",
            "SECURITY_SCANNER_NOTIFY_ON_NEW_INDEX", "SECURITY_SCANNER_V2", "SIGNING",
            "SPAM_DETECTION", "STORAGE_REPLICATION", "SUPERUSER_CONFIGDUMP", "TEAM_SYNCING",
            "UI_DELAY_AFTER_WRITE", "UI_MODELCARD", "UI_V2", "USERNAME_CONFIRMATION",
            "USER_EVENTS", "USER_LAST_ACCESSED", "USER_LOG_ACCESS",
        ),
        False,
    ),
}  # fmt: skip


def features(settings: Settings) -> dict[str, bool]:
    """Every feature flag without its FEATURE_ prefix; cargohold's own settings win."""
    flags = dict(_FIXED_FEATURES)
    for name in type(settings).model_fields:
        if name.startswith("FEATURE_"):
            flags[name.removeprefix("FEATURE_")] = bool(getattr(settings, name))
    return dict(sorted(flags.items()))


def _branding(settings: Settings) -> dict[str, str | None]:
    branding = dict(settings.BRANDING)
    if settings.ENTERPRISE_LOGO_URL:
        branding["logo"] = settings.ENTERPRISE_LOGO_URL
        if settings.ENTERPRISE_LOGO_URL_DARK:
            branding["logo_dark"] = settings.ENTERPRISE_LOGO_URL_DARK
    return branding


def public_config(settings: Settings, flags: dict[str, bool]) -> dict[str, Any]:
    public: dict[str, Any] = dict(_QUAY_FIXED_PUBLIC)
    public.update({key: getattr(settings, key) for key in _SETTINGS_PUBLIC})
    public.update({f"FEATURE_{name}": flags[name] for name in _PUBLIC_FEATURES})
    public["BRANDING"] = _branding(settings)
    if settings.ENTERPRISE_LOGO_URL:
        public["ENTERPRISE_LOGO_URL"] = settings.ENTERPRISE_LOGO_URL
    if settings.ENTERPRISE_LOGO_URL_DARK:
        public["ENTERPRISE_LOGO_URL_DARK"] = settings.ENTERPRISE_LOGO_URL_DARK
    return dict(sorted(public.items()))


def client_config(settings: Settings) -> dict[str, Any]:
    """Quay's /config document. There is no billing, so the version is always shown."""
    flags = features(settings)
    return {
        "config": public_config(settings, flags),
        "features": flags,
        "oauth": {},
        "external_login": [],
        "registry_state": settings.REGISTRY_STATE,
        "account_recovery_mode": False,
        "version_number": f"cargohold {__version__}",
    }
