"""Settings: a Quay-style config.yaml, overridable key by key with CARGOHOLD_<KEY> variables.

Key names and defaults are Quay's so that an existing Quay config file can be brought along.
Unknown keys are kept (and logged) rather than refused, as Quay does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "cargohold-data"
ENV_PREFIX = "CARGOHOLD_"
_DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(Exception):
    """A configuration value that makes start-up impossible; the message names the key."""


def parse_duration(value: str) -> int:
    """Parse Quay's duration strings such as '2w', '1d', '0s' into seconds."""
    match = _DURATION_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 10m, 1d or 2w")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


class Settings(BaseModel):
    """Every setting cargohold understands, with Quay's defaults."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    # True when no DB_URI was configured and the SQLite file in DATA_DIR is used.
    _embedded_database: bool = PrivateAttr(default=False)

    # Left unset, `serve` derives it from the address it listens on.
    SERVER_HOSTNAME: str = "localhost:8080"
    PREFERRED_URL_SCHEME: str = "http"
    # A proxy in front terminates TLS: serve plain HTTP although URLs say https.
    EXTERNAL_TLS_TERMINATION: bool = False
    REGISTRY_TITLE: str = "cargohold"
    REGISTRY_TITLE_SHORT: str = "cargohold"
    DB_URI: str = ""
    DB_CONNECTION_ARGS: dict[str, Any] = {}
    # Connections each process keeps open, and how many more it may open under load
    # (defaults: 10 and 20 on PostgreSQL, 16 and 16 on SQLite).
    DB_POOL_SIZE: int | None = None
    DB_POOL_MAX_OVERFLOW: int | None = None
    DISTRIBUTED_STORAGE_CONFIG: dict[str, list[Any]] = {}
    DISTRIBUTED_STORAGE_PREFERENCE: list[str] = []
    DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: list[str] = []
    SUPER_USERS: list[str] = []
    GLOBAL_READONLY_SUPER_USERS: list[str] = []
    SECRET_KEY: str = ""
    DATABASE_SECRET_KEY: str = ""
    TAG_EXPIRATION_OPTIONS: list[str] = ["0s", "1d", "1w", "2w", "4w"]
    DEFAULT_TAG_EXPIRATION: str = "2w"
    FRESH_LOGIN_TIMEOUT: str = "10m"
    SESSION_COOKIE_NAME: str = "_csrf_token"
    SESSION_COOKIE_SECURE: bool = False
    SESSION_TIMEOUT: str = "31d"
    FEATURE_PERMANENT_SESSIONS: bool = True
    # Largest request body the API reads, in bytes; /v2 blob uploads and build archives stream.
    API_MAX_BODY_BYTES: int = 1024 * 1024
    USER_RECOVERY_TOKEN_LIFETIME: str = "30m"
    BROWSER_API_CALLS_XHR_ONLY: bool = True
    CORS_ORIGIN: list[str] = []
    REGISTRY_STATE: str = "normal"
    CREATE_PRIVATE_REPO_ON_PUSH: bool = True
    CREATE_NAMESPACE_ON_PUSH: bool = False
    PERMANENTLY_DELETE_TAGS: bool = False
    LIBRARY_NAMESPACE: str = "library"
    AVATAR_KIND: str = "local"
    AUTHENTICATION_TYPE: str = "Database"
    CONTACT_INFO: list[str] = []
    BRANDING: dict[str, str | None] = {
        "logo": None,
        "logo_dark": None,
        "footer_img": None,
        "footer_url": None,
    }
    ENTERPRISE_LOGO_URL: str | None = None
    ENTERPRISE_LOGO_URL_DARK: str | None = None
    FOOTER_LINKS: dict[str, str] = {}
    DOCUMENTATION_ROOT: str = "https://docs.projectquay.io/"
    SEARCH_RESULTS_PER_PAGE: int = 10
    SEARCH_MAX_RESULT_PAGE_COUNT: int = 10
    UI_DELAY_AFTER_WRITE_SECONDS: int = 3
    APP_SPECIFIC_TOKEN_EXPIRATION: str | None = None
    DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: int = 0
    PUBLIC_NAMESPACES: list[str] = []
    INSTANCE_SERVICE_KEY_SERVICE: str = "quay"
    INSTANCE_SERVICE_KEY_EXPIRATION: int = 120
    INSTANCE_SERVICE_KEY_REFRESH: int = 55
    REGISTRY_JWT_AUTH_MAX_FRESH_S: int = 3660
    PUSH_TEMP_TAG_EXPIRATION_SEC: int = 3600
    QUOTA_INVALIDATE_TOTALS: bool = True
    QUOTA_BACKFILL: bool = True
    QUOTA_TOTAL_DELAY_SECONDS: int = 1800
    QUOTA_BACKFILL_POLL_PERIOD: int = 15
    QUOTA_BACKFILL_BATCH_SIZE: int = 100
    QUOTA_REGISTRY_SIZE_POLL_PERIOD: int = 60
    EXPIRED_SERVICE_KEY_TTL_SEC: int = 604800
    UNAPPROVED_SERVICE_KEY_TTL_SEC: int = 86400
    ACTION_LOG_AUDIT_LOGINS: bool = True
    ACTION_LOG_AUDIT_LOGIN_FAILURES: bool = False

    MAIL_SERVER: str = ""
    MAIL_PORT: int = 587
    MAIL_USE_TLS: bool = True
    MAIL_USE_SSL: bool = False
    MAIL_USERNAME: str = ""
    MAIL_PASSWORD: str = ""
    MAIL_DEFAULT_SENDER: str = "admin@example.com"

    FEATURE_ANONYMOUS_ACCESS: bool = True
    FEATURE_SUPER_USERS: bool = True
    FEATURE_SUPERUSERS_FULL_ACCESS: bool = False
    FEATURE_SUPERUSER_CONFIGDUMP: bool = False
    FEATURE_USER_CREATION: bool = True
    FEATURE_INVITE_ONLY_USER_CREATION: bool = False
    FEATURE_DIRECT_LOGIN: bool = True
    FEATURE_MAILING: bool = False
    FEATURE_REQUIRE_TEAM_INVITE: bool = True
    FEATURE_USER_RENAME: bool = False
    FEATURE_APP_SPECIFIC_TOKENS: bool = True
    FEATURE_EXTENDED_REPOSITORY_NAMES: bool = True
    FEATURE_LIBRARY_SUPPORT: bool = True
    FEATURE_PUBLIC_CATALOG: bool = False
    FEATURE_REPO_MIRROR: bool = True
    FEATURE_IMMUTABLE_TAGS: bool = True
    FEATURE_AUTO_PRUNE: bool = True
    FEATURE_PROXY_CACHE: bool = True
    FEATURE_QUOTA_MANAGEMENT: bool = True
    FEATURE_EDIT_QUOTA: bool = True
    FEATURE_VERIFY_QUOTA: bool = True
    FEATURE_CHANGE_TAG_EXPIRATION: bool = True
    FEATURE_GARBAGE_COLLECTION: bool = True
    GARBAGE_COLLECTION_FREQUENCY: int = 30
    FEATURE_REFERRERS_API: bool = True
    FEATURE_ASSIGN_OAUTH_TOKEN: bool = True
    FEATURE_GENERAL_OCI_SUPPORT: bool = True
    FEATURE_USER_INITIALIZE: bool = True
    FEATURE_BUILD_SUPPORT: bool = True
    FEATURE_GITHUB_BUILD: bool = False
    FEATURE_GITLAB_BUILD: bool = False
    FEATURE_BITBUCKET_BUILD: bool = False
    FEATURE_USER_METADATA: bool = False
    FEATURE_PARTIAL_USER_AUTOCOMPLETE: bool = True
    FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL: bool = True
    FEATURE_LOG_EXPORT: bool = True
    # Seconds an exported audit-log file stays downloadable.
    EXPORT_ACTION_LOGS_SECONDS: int = 60 * 60
    FEATURE_READER_BUILD_LOGS: bool = False
    SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD: int = 100
    SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD: int = 5
    FEATURE_PROXY_STORAGE: bool = False
    FEATURE_ORG_SHARED_EMAIL: bool = False
    FEATURE_SUPERUSERS_ORG_CREATION_ONLY: bool = False
    DIRECT_OAUTH_CLIENTID_WHITELIST: list[str] = []
    REPO_MIRROR_INTERVAL: int = 30
    # Seconds a mirror sync or build claim outlives its worker's last heartbeat before
    # another worker may take it over; heartbeats come three times per period.
    WORKER_HEARTBEAT_TIMEOUT: int = 60
    # Who may read /metrics (addresses or CIDR networks); loopback only by default.
    METRICS_ALLOWED_NETWORKS: list[str] = ["127.0.0.0/8", "::1/128"]
    # `text` (the default) or `json`: one JSON object per log line, with the request id.
    LOG_FORMAT: str = "text"
    REPO_MIRROR_SERVER_HOSTNAME: str | None = None
    REPO_MIRROR_TLS_VERIFY: bool = True
    FEATURE_SPARSE_INDEX: bool = False
    SSRF_ALLOWED_HOSTS: list[str] = []
    # Share of free disk space below which /health/warning reports disk_space_warning false.
    DISKSPACE_HEALTH_WARNING_THRESHOLD: float = 0.1
    # Seconds a webhook or Slack delivery may take.
    NOTIFICATION_SEND_TIMEOUT: int = 10

    # cargohold's own keys (Quay has no equivalent).
    # Peers whose Forwarded / X-Forwarded-For / X-Forwarded-Proto headers are believed:
    # IP addresses and CIDR ranges.
    TRUSTED_PROXIES: list[str] = ["127.0.0.1", "::1"]
    # Seconds a server keeps serving after SIGTERM, answering /health/instance with 503, so
    # that load balancers stop sending to it before it closes its socket.
    SHUTDOWN_DRAIN_SECONDS: float = 5.0
    # Back-off after failed logins, per account: an account with n failures on record refuses
    # every login until SCALE * (2**n - 1) / 2 seconds after the last one (Quay's curve with
    # its fixed 1 s scale), never longer than MAX. A scale of 0 turns the back-off off.
    LOGIN_FAILURE_BACKOFF_SCALE_SEC: float = 1.0
    LOGIN_FAILURE_BACKOFF_MAX_SEC: int = 900
    # How long an uploaded or mounted blob that no manifest refers to yet is kept from GC.
    BLOB_UPLOAD_GRACE_SEC: int = 86400
    GC_BATCH_SIZE: int = 500
    GC_UPLOAD_MAX_AGE: str = "2d"
    DATA_DIR: str = DEFAULT_DATA_DIR
    # A built web UI folder (such as Quay's own) served at / instead of cargohold's UI.
    WEB_UI_PATH: str | None = None
    WORKERS_ENABLED: bool = True
    # HTTP processes of `cargohold serve` (--workers); unset means one per CPU.
    SERVER_WORKERS: int | None = Field(default=None, ge=1)
    BUILD_EXECUTOR: str = "auto"
    # Builds one worker process runs at a time (Quay's ALLOWED_WORKER_COUNT).
    BUILD_MAX_CONCURRENT: int = 1
    # Longest a build may run, in seconds, before it is stopped (Quay's MACHINE_MAX_TIME).
    BUILD_TIMEOUT: int = 7200
    # Longest the git checkout or archive download of a build may take, in seconds.
    BUILD_FETCH_TIMEOUT: int = 300
    # First delay before a failed notification delivery is tried again; it doubles each time.
    NOTIFICATION_RETRY_DELAY_SEC: int = 30
    # How often tags about to expire are looked for (repo_image_expiry notifications).
    NOTIFICATION_EXPIRY_SCAN_SEC: int = 300
    # How often the autoprune worker applies every auto-prune policy.
    AUTOPRUNE_POLL_PERIOD_SEC: int = 300
    # Tags the autoprune worker ends per repository in one transaction.
    AUTOPRUNE_TAG_BATCH_SIZE: int = 100
    # The unprivileged host account builds run as (with /etc/subuid and /etc/subgid ranges).
    BUILD_USER: str = "cargohold-build"
    # Where per-build folders are made (the system's temporary folder when empty); the build
    # user must be able to reach it, so it may not sit inside a private folder.
    BUILD_WORK_DIR: str = ""
    # isolated: RUN steps reach the internet but no loopback, link-local or private address;
    # none: builds have no network at all.
    BUILD_NETWORK: str = "isolated"
    # Per-build limits: address space of each RUN process (or the build's cgroup memory),
    # processes, and the size of the build's own storage.
    BUILD_MEMORY_LIMIT_MB: int = 4096
    BUILD_PIDS_LIMIT: int = 1024
    BUILD_STORAGE_LIMIT_MB: int = 10240

    @field_validator("PREFERRED_URL_SCHEME")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value not in ("http", "https"):
            raise ValueError("must be http or https")
        return value

    @field_validator("API_MAX_BODY_BYTES")
    @classmethod
    def _max_body(cls, value: int) -> int:
        if value < 1024:
            raise ValueError("must be at least 1024 bytes")
        return value

    @field_validator("DB_URI")
    @classmethod
    def _db_uri(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql:// URIs are supported")
        return value

    @field_validator("TAG_EXPIRATION_OPTIONS")
    @classmethod
    def _tag_expiration_options(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one duration")
        for item in value:
            parse_duration(item)
        return value

    @field_validator(
        "DEFAULT_TAG_EXPIRATION",
        "FRESH_LOGIN_TIMEOUT",
        "SESSION_TIMEOUT",
        "USER_RECOVERY_TOKEN_LIFETIME",
    )
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("GC_UPLOAD_MAX_AGE")
    @classmethod
    def _gc_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("LOGIN_FAILURE_BACKOFF_SCALE_SEC", "LOGIN_FAILURE_BACKOFF_MAX_SEC")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("GC_BATCH_SIZE")
    @classmethod
    def _gc_batch_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("DB_POOL_SIZE", "DB_POOL_MAX_OVERFLOW")
    @classmethod
    def _pool(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        from cargohold.forwarded import parse_networks

        parse_networks(value)
        return value

    @field_validator("SHUTDOWN_DRAIN_SECONDS")
    @classmethod
    def _drain(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("REGISTRY_STATE")
    @classmethod
    def _registry_state(cls, value: str) -> str:
        if value not in ("normal", "readonly"):
            raise ValueError("must be normal or readonly")
        return value

    @field_validator("AUTHENTICATION_TYPE")
    @classmethod
    def _authentication_type(cls, value: str) -> str:
        if value != "Database":
            raise ValueError("only Database authentication is supported")
        return value

    @field_validator("WEB_UI_PATH")
    @classmethod
    def _web_ui_path(cls, value: str | None) -> str | None:
        if value and not (Path(value) / "index.html").is_file():
            raise ValueError(f"{value} has no index.html")
        return value or None

    @field_validator("BUILD_EXECUTOR")
    @classmethod
    def _build_executor(cls, value: str) -> str:
        if value not in ("auto", "buildah", "none"):
            raise ValueError("must be buildah or none")
        return value

    @field_validator("BUILD_NETWORK")
    @classmethod
    def _build_network(cls, value: str) -> str:
        if value not in ("isolated", "none"):
            raise ValueError("must be isolated or none")
        return value

    @field_validator("BUILD_PIDS_LIMIT", "BUILD_STORAGE_LIMIT_MB")
    @classmethod
    def _build_limit(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("BUILD_MEMORY_LIMIT_MB")
    @classmethod
    def _build_memory(cls, value: int) -> int:
        # The OCI runtime starting each step runs under the same limit.
        if value < 128:
            raise ValueError("must be at least 128")
        return value

    # Derived values used across the code base.
    @property
    def server_url(self) -> str:
        return f"{self.PREFERRED_URL_SCHEME}://{self.SERVER_HOSTNAME}"

    @property
    def session_cookie_secure(self) -> bool:
        """Browsers reach an https installation over https only: never send the cookie in clear."""
        return self.SESSION_COOKIE_SECURE or self.PREFERRED_URL_SCHEME == "https"

    @property
    def default_tag_expiration_s(self) -> int:
        return parse_duration(self.DEFAULT_TAG_EXPIRATION)

    @property
    def tag_expiration_options_s(self) -> list[int]:
        return [parse_duration(option) for option in self.TAG_EXPIRATION_OPTIONS]

    @property
    def gc_upload_max_age_s(self) -> int:
        return parse_duration(self.GC_UPLOAD_MAX_AGE)

    @property
    def fresh_login_timeout_s(self) -> int:
        return parse_duration(self.FRESH_LOGIN_TIMEOUT)

    @property
    def user_recovery_token_lifetime_s(self) -> int:
        return parse_duration(self.USER_RECOVERY_TOKEN_LIFETIME)

    @property
    def session_timeout_s(self) -> int:
        return parse_duration(self.SESSION_TIMEOUT)

    @property
    def embedded_database(self) -> bool:
        """The SQLite default nobody configured: one process owns it, so it may migrate itself."""
        return self._embedded_database

    def feature(self, name: str) -> bool:
        return bool(getattr(self, f"FEATURE_{name}", False))

    def is_superuser_name(self, username: str, flagged: bool = False) -> bool:
        """Named in SUPER_USERS, or flagged in the database (`user create --superuser`)."""
        return self.FEATURE_SUPER_USERS and (flagged or username in self.SUPER_USERS)


def parse_env_value(raw: str) -> Any:
    """Environment values are YAML scalars or JSON/YAML documents ('true', '[a, b]', '{...}')."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _persisted_secret(data_dir: Path, name: str) -> str:
    """A secret generated once and kept in the data folder, for installs with no config at all."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _without_nulls(raw: dict[str, Any]) -> dict[str, Any]:
    """Quay's config tool writes unset keys as null (`MAIL_USERNAME: null`); Quay reads them
    as "not configured", so a known key set to null takes its default here too."""
    return {
        key: value
        for key, value in raw.items()
        if value is not None or key not in Settings.model_fields
    }


def load_settings(config_dir: str | os.PathLike[str] | None = None, *, environ=None) -> Settings:
    """Read config.yaml (when present) and CARGOHOLD_* overrides; fill in embedded defaults."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if config_dir is not None:
        path = Path(config_dir) / "config.yaml"
        if path.exists():
            try:
                loaded = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: must be a mapping of KEY: value")
            raw.update(loaded)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            raw[key[len(ENV_PREFIX) :]] = parse_env_value(value)

    try:
        settings = Settings(**_without_nulls(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"config key {key}: {first['msg']}") from exc

    for key in sorted(settings.model_extra or {}):
        log.warning("config key %s is not used by cargohold and is ignored", key)

    data_dir = Path(settings.DATA_DIR)
    if not settings.DB_URI:
        settings.DB_URI = f"sqlite:///{data_dir / 'cargohold.db'}"
        settings._embedded_database = True
    if not settings.DISTRIBUTED_STORAGE_CONFIG:
        settings.DISTRIBUTED_STORAGE_CONFIG = {
            "default": ["LocalStorage", {"storage_path": str(data_dir / "storage")}]
        }
    if not settings.DISTRIBUTED_STORAGE_PREFERENCE:
        settings.DISTRIBUTED_STORAGE_PREFERENCE = [next(iter(settings.DISTRIBUTED_STORAGE_CONFIG))]
    for location in settings.DISTRIBUTED_STORAGE_PREFERENCE:
        if location not in settings.DISTRIBUTED_STORAGE_CONFIG:
            raise ConfigError(
                f"config key DISTRIBUTED_STORAGE_PREFERENCE: location {location!r} is not "
                "defined in DISTRIBUTED_STORAGE_CONFIG"
            )
    if not settings.SECRET_KEY:
        settings.SECRET_KEY = _persisted_secret(data_dir, "secret_key")
    if not settings.DATABASE_SECRET_KEY:
        settings.DATABASE_SECRET_KEY = _persisted_secret(data_dir, "database_secret_key")
    return settings


def describe(settings: Settings) -> str:
    """A log-safe summary of the settings (secrets left out)."""
    hidden = {"SECRET_KEY", "DATABASE_SECRET_KEY", "MAIL_PASSWORD"}
    shown = {k: v for k, v in settings.model_dump().items() if k not in hidden}
    return json.dumps(shown, default=str, sort_keys=True)
