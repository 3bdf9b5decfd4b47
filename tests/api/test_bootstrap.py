"""The client bootstrap Quay's web UI reads first: /config, /.well-known, capabilities, change log,
and the billing calls a Quay without billing does not serve."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import server as live_server
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.server import LiveServer
from tests.support.sessions import session_client

TOP_LEVEL_KEYS = {
    "config",
    "features",
    "oauth",
    "external_login",
    "registry_state",
    "account_recovery_mode",
    "version_number",
}
# Every FEATURE_* flag of Quay's default configuration, without the prefix.
QUAY_FEATURES = set(
    [
        "ACTION_LOG_ROTATION",
        "ADVERTISE_V2",
        "AGGREGATED_LOG_COUNT_RETRIEVAL",
        "ANONYMOUS_ACCESS",
        "APP_SPECIFIC_TOKENS",
        "ASSIGN_OAUTH_TOKEN",
        "AUTO_PRUNE",
        "BILLING",
        "BITBUCKET_BUILD",
        "BLACKLISTED_EMAILS",
        "BUILD_SUPPORT",
        "CHANGE_TAG_EXPIRATION",
        "CLEAR_EXPIRED_RAC_ENTRIES",
        "DIRECT_LOGIN",
        "DISABLE_PULL_LOGS_FOR_FREE_NAMESPACES",
        "EDIT_QUOTA",
        "ENABLE_STALE_MPU_CLEANUP",
        "ENTITLEMENT_RECONCILIATION",
        "EXPORT_COMPLIANCE",
        "EXTENDED_ACTION_LOGGING",
        "EXTENDED_REPOSITORY_NAMES",
        "FIPS",
        "GARBAGE_COLLECTION",
        "GENERAL_OCI_SUPPORT",
        "GITHUB_BUILD",
        "GITHUB_LOGIN",
        "GITLAB_BUILD",
        "GOOGLE_LOGIN",
        "HELM_OCI_SUPPORT",
        "IMAGE_EXPIRY_TRIGGER",
        "IMAGE_PULL_STATS",
        "IMMUTABLE_TAGS",
        "IMMUTABLE_TAGS_CAN_EXPIRE",
        "INVITE_ONLY_USER_CREATION",
        "LIBRARY_SUPPORT",
        "LOG_EXPORT",
        "MAILING",
        "MANIFEST_SIZE_BACKFILL",
        "MANIFEST_SUBJECT_BACKFILL",
        "NAMESPACE_GARBAGE_COLLECTION",
        "NONSUPERUSER_TEAM_SYNCING_SETUP",
        "ORG_MIRROR",
        "ORG_SHARED_EMAIL",
        "OTEL_TRACING",
        "PARTIAL_USER_AUTOCOMPLETE",
        "PERMANENT_SESSIONS",
        "PROGRAMMATIC_BOOTSTRAP",
        "PROXY_CACHE",
        "PROXY_CACHE_BLOB_DOWNLOAD",
        "PROXY_STORAGE",
        "PUBLIC_CATALOG",
        "QUOTA_MANAGEMENT",
        "QUOTA_NOTIFICATIONS",
        "QUOTA_SUPPRESS_FAILURES",
        "RATE_LIMITS",
        "READER_BUILD_LOGS",
        "RECAPTCHA",
        "REFERRERS_API",
        "REPOSITORY_ACTION_COUNTER",
        "REPOSITORY_GARBAGE_COLLECTION",
        "REPO_MIRROR",
        "REQUIRE_ENCRYPTED_BASIC_AUTH",
        "REQUIRE_TEAM_INVITE",
        "RESTRICTED_USERS",
        "RESTRICTED_V1_PUSH",
        "RH_MARKETPLACE",
        "SECURITY_NOTIFICATIONS",
        "SECURITY_SCANNER",
        "SECURITY_SCANNER_NOTIFY_ON_NEW_INDEX",
        "SECURITY_SCANNER_V2",
        "SIGNING",
        "SPAM_DETECTION",
        "SPARSE_INDEX",
        "STORAGE_REPLICATION",
        "SUPERUSERS_FULL_ACCESS",
        "SUPERUSERS_ORG_CREATION_ONLY",
        "SUPERUSER_CONFIGDUMP",
        "SUPER_USERS",
        "TEAM_SYNCING",
        "UI_DELAY_AFTER_WRITE",
        "UI_MODELCARD",
        "UI_V2",
        "USERNAME_CONFIRMATION",
        "USER_CREATION",
        "USER_EVENTS",
        "USER_INITIALIZE",
        "USER_LAST_ACCESSED",
        "USER_LOG_ACCESS",
        "USER_METADATA",
        "USER_RENAME",
        "VERIFY_QUOTA",
    ]
)
# Quay's public keys that always have a value in its default configuration.
QUAY_PUBLIC_KEYS = {
    "SERVER_HOSTNAME",
    "PREFERRED_URL_SCHEME",
    "AUTHENTICATION_TYPE",
    "REGISTRY_TITLE",
    "REGISTRY_TITLE_SHORT",
    "CONTACT_INFO",
    "AVATAR_KIND",
    "LOCAL_OAUTH_HANDLER",
    "SENTRY_PUBLIC_DSN",
    "STATIC_SITE_BUCKET",
    "CHANNEL_COLORS",
    "TAG_EXPIRATION_OPTIONS",
    "SEARCH_RESULTS_PER_PAGE",
    "SEARCH_MAX_RESULT_PAGE_COUNT",
    "BRANDING",
    "DOCUMENTATION_ROOT",
    "FEATURE_REPO_MIRROR",
    "FEATURE_ORG_MIRROR",
    "FEATURE_QUOTA_MANAGEMENT",
    "FEATURE_QUOTA_NOTIFICATIONS",
    "FEATURE_EDIT_QUOTA",
    "FEATURE_PROXY_CACHE",
    "QUOTA_BACKFILL",
    "PERMANENTLY_DELETE_TAGS",
    "UI_V2_FEEDBACK_FORM",
    "FOOTER_LINKS",
    "UI_DELAY_AFTER_WRITE_SECONDS",
    "FEATURE_ASSIGN_OAUTH_TOKEN",
    "FEATURE_IMAGE_EXPIRY_TRIGGER",
    "FEATURE_AUTO_PRUNE",
    "DEFAULT_NAMESPACE_AUTOPRUNE_POLICY",
    "DEFAULT_UI",
    "DISABLE_ANGULAR_UI",
    "FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE",
}


def test_config_has_quays_shape_and_every_feature_flag(anon_client: httpx.Client) -> None:
    response = anon_client.get("/config")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == TOP_LEVEL_KEYS
    assert set(body["features"]) >= QUAY_FEATURES
    assert all(isinstance(value, bool) for value in body["features"].values())
    assert set(body["config"]) == QUAY_PUBLIC_KEYS
    assert body["oauth"] == {}
    assert body["external_login"] == []
    assert body["registry_state"] == "normal"
    assert body["account_recovery_mode"] is False
    assert body["version_number"].startswith("cargohold ")
    # No billing here: the UI must take its no-billing path.
    assert body["features"]["BILLING"] is False
    assert set(body["config"]["BRANDING"]) == {"logo", "logo_dark", "footer_img", "footer_url"}


def test_config_reports_the_values_the_server_runs_with(server_factory) -> None:
    live = server_factory(
        {
            "REGISTRY_TITLE": "Harbour Registry",
            "REGISTRY_TITLE_SHORT": "Harbour",
            "FEATURE_USER_CREATION": False,
            "FEATURE_SPARSE_INDEX": True,
            "FEATURE_PERMANENT_SESSIONS": False,
            "TAG_EXPIRATION_OPTIONS": ["1d", "3w"],
            "CONTACT_INFO": ["mailto:ops@example.com"],
            "FOOTER_LINKS": {"PRIVACY_POLICY_URL": "https://example.com/privacy"},
            "ENTERPRISE_LOGO_URL": "https://example.com/logo.svg",
            "REGISTRY_STATE": "readonly",
            # Quay flags cargohold does not implement stay off whatever the file says.
            "FEATURE_BILLING": True,
            "FEATURE_SECURITY_SCANNER": True,
        }
    )
    body = httpx.options(live.url + "/config").json()
    assert body == httpx.get(live.url + "/config").json()
    config, features = body["config"], body["features"]
    assert config["REGISTRY_TITLE"] == "Harbour Registry"
    assert config["REGISTRY_TITLE_SHORT"] == "Harbour"
    assert config["SERVER_HOSTNAME"] == live.host
    assert config["TAG_EXPIRATION_OPTIONS"] == ["1d", "3w"]
    assert config["CONTACT_INFO"] == ["mailto:ops@example.com"]
    assert config["FOOTER_LINKS"] == {"PRIVACY_POLICY_URL": "https://example.com/privacy"}
    assert config["ENTERPRISE_LOGO_URL"] == "https://example.com/logo.svg"
    assert config["BRANDING"]["logo"] == "https://example.com/logo.svg"
    assert body["registry_state"] == "readonly"
    assert features["USER_CREATION"] is False
    assert features["SPARSE_INDEX"] is True
    assert features["PERMANENT_SESSIONS"] is False
    assert features["BILLING"] is False
    assert features["SECURITY_SCANNER"] is False
    capabilities = httpx.get(live.url + "/api/v1/registry/capabilities").json()
    assert capabilities["sparse_manifests"]["supported"] is True
    assert capabilities["sparse_manifests"]["optional_architectures_allowed"] is True


def _string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _string_leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _string_leaves(item)]
    return []


def _storage_with_unused_location(marker: str, tmp_path: Path) -> dict[str, Any]:
    """The test backend's storage, plus an S3 location with keys that is never used."""
    if live_server.test_storage() == "s3":
        used = live_server.s3_storage_config()
    else:
        used = {
            "DISTRIBUTED_STORAGE_CONFIG": {
                "local": ["LocalStorage", {"storage_path": str(tmp_path / "blobs")}]
            },
            "DISTRIBUTED_STORAGE_PREFERENCE": ["local"],
        }
    used["DISTRIBUTED_STORAGE_CONFIG"]["unused"] = [
        "S3Storage",
        {
            "s3_access_key": f"{marker}-access-key",
            "s3_secret_key": f"{marker}-storage-secret",
            "s3_bucket": "unused",
            "storage_path": "/",
        },
    ]
    return used


@pytest.fixture
def database_uri_with_password() -> Iterator[Callable[[str], str | None]]:
    """On PostgreSQL, a fresh database whose URI carries a password (trust auth ignores it)."""
    created: list[str] = []

    def make(password: str) -> str | None:
        if live_server.test_backend() != "postgres":
            return None
        uri = live_server.create_postgres_database()
        created.append(uri)
        scheme, rest = uri.split("://", 1)
        user, host = rest.split("@", 1)
        return f"{scheme}://{user}:{password}@{host}"

    yield make
    for uri in created:
        live_server.drop_postgres_database(uri)


def test_config_never_contains_a_secret(
    server_factory, tmp_path: Path, database_uri_with_password
) -> None:
    marker = f"s3cr3t{secrets.token_hex(8)}"
    secret_values: dict[str, Any] = {
        "SECRET_KEY": f"{marker}-secret-key",
        "DATABASE_SECRET_KEY": f"{marker}-database-secret-key",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_USERNAME": f"{marker}-mail-user",
        "MAIL_PASSWORD": f"{marker}-mail-password",
        # Keys cargohold does not use are kept in the settings too; none may leak.
        "GITHUB_LOGIN_CONFIG": {"CLIENT_ID": "x", "CLIENT_SECRET": f"{marker}-github"},
        "SECURITY_SCANNER_V4_PSK": f"{marker}-psk",
        "BUILDLOGS_REDIS": {"host": "localhost", "password": f"{marker}-redis"},
    }
    config = {**secret_values, **_storage_with_unused_location(marker, tmp_path)}
    db_uri = database_uri_with_password(f"{marker}-db-password")
    if db_uri:
        config["DB_URI"] = db_uri
    live = server_factory(config)

    response = httpx.get(live.url + "/config")
    assert response.status_code == 200
    settings = live.settings
    configured = [
        *_string_leaves(secret_values),
        settings.DB_URI,
        *_string_leaves(settings.DISTRIBUTED_STORAGE_CONFIG),
    ]
    secret_like = [value for value in configured if marker in value or "key" in value.lower()]
    assert f"{marker}-storage-secret" in secret_like
    leaked = [value for value in secret_like if value in response.text]
    assert leaked == []
    assert marker not in response.text
    # The storage credentials of the live backend (SeaweedFS keys on S3 runs) stay out too.
    for location in settings.DISTRIBUTED_STORAGE_CONFIG.values():
        for key, value in location[1].items():
            if "key" in key and isinstance(value, str):
                assert value not in response.text


def test_app_capabilities_describe_this_server(server: LiveServer, anon_client) -> None:
    response = anon_client.get("/.well-known/app-capabilities")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    base = server.settings.server_url
    assert body["appName"] == "io.quay"
    capabilities = body["capabilities"]
    assert capabilities["io.quay.view-image"]["url-template"] == (
        f"{base}/{{namespace}}/{{reponame}}:{{tag}}"
    )
    assert capabilities["io.quay.manifest-security"]["rest-api-template"] == (
        f"{base}/api/v1/repository/{{namespace}}/{{reponame}}/manifest/{{digest}}/security"
    )
    assert capabilities["io.quay.image-security"]["deprecated"] is True


def test_change_password_link_needs_a_browser_session(server: LiveServer, anon_client) -> None:
    anonymous = anon_client.get("/.well-known/change-password")
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": "Method requires login and no valid login could be loaded."
    }
    someone = create_user(server)
    # A bearer token is not a browser session.
    with bearer_client(server, issue_token(server, someone.username, ALL_SCOPES)) as client:
        assert client.get("/.well-known/change-password").status_code == 401
    with session_client(server, someone.username, someone.password) as client:
        redirect = client.get("/.well-known/change-password")
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/#/account"


def test_registry_capabilities_answer_everyone(anon_client: httpx.Client) -> None:
    response = anon_client.get("/api/v1/registry/capabilities")
    assert response.status_code == 200
    assert response.json() == {
        "sparse_manifests": {
            "supported": False,
            "required_architectures": [],
            "optional_architectures_allowed": False,
        },
        "mirror_architectures": ["amd64", "arm64", "ppc64le", "s390x"],
    }


def test_changelog_is_for_superusers_only(server_factory) -> None:
    live = server_factory({"SUPER_USERS": ["admin"], "GLOBAL_READONLY_SUPER_USERS": ["auditor"]})
    admin = create_user(live, "admin")
    auditor = create_user(live, "auditor")
    someone = create_user(live)
    assert httpx.get(live.url + "/api/v1/superuser/changelog/").status_code == 401
    with bearer_client(live, issue_token(live, someone.username, ALL_SCOPES)) as client:
        refused = client.get("/api/v1/superuser/changelog/")
    assert refused.status_code == 403
    assert refused.json()["error_type"] == "insufficient_scope"
    for reader in (admin, auditor):
        with session_client(live, reader.username, reader.password) as client:
            response = client.get("/api/v1/superuser/changelog/")
        assert response.status_code == 200
        assert set(response.json()) == {"log"}
        assert response.json()["log"].startswith("# Changelog")


@pytest.mark.parametrize("path", ["/api/v1/plans/", "/api/v1/user/plan", "/api/v1/user/plan/"])
def test_billing_routes_do_not_exist_without_billing(server: LiveServer, path: str) -> None:
    someone = create_user(server)
    with bearer_client(server, issue_token(server, someone.username, ALL_SCOPES)) as client:
        response = client.get(path)
    assert response.status_code == 404
    assert "requested URL was not found" in response.json()["message"]
