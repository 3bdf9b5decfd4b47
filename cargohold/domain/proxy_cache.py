"""Proxy-cache organizations: the configuration an organization pulls through.

The pull-through itself is in `cargohold.domain.proxy_upstream` (the upstream client) and
`cargohold.registry.proxy` (the /v2 side). Credentials are Fernet-encrypted like mirror
credentials because they are sent upstream and must be readable again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.proxy import DEFAULT_EXPIRATION_S, ProxyCacheConfig
from cargohold.db.models.quota import NamespaceQuota
from cargohold.db.models.registry import Manifest, Repository, Tag
from cargohold.domain import quota, tags
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid

SSRF_MESSAGE = "The provided registry URL is not allowed"
# Docker Hub's registry answers at another name than the one images are named by.
REGISTRY_HOSTS = {"docker.io": "registry-1.docker.io"}


class ProxyCacheError(Invalid):
    """A refused configuration; the message is Quay's."""


@dataclass(frozen=True)
class Upstream:
    """What a pull-through needs, decrypted: where the upstream is and how to log in."""

    registry: str
    username: str | None
    password: str | None
    expiration_s: int
    insecure: bool

    @property
    def host(self) -> str:
        return self.registry.split("/", 1)[0]

    @property
    def namespace(self) -> str | None:
        rest = self.registry.split("/", 1)[1] if "/" in self.registry else ""
        return rest.strip("/") or None

    @property
    def base_url(self) -> str:
        scheme = "http" if self.insecure else "https"
        return f"{scheme}://{REGISTRY_HOSTS.get(self.host, self.host)}"

    def repository(self, name: str) -> str:
        """The upstream repository for `org/<name>`: under the configured namespace, if any."""
        return f"{self.namespace}/{name}" if self.namespace else name


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def get_config(session: Session, organization_id: int) -> ProxyCacheConfig | None:
    return session.scalar(
        select(ProxyCacheConfig).where(ProxyCacheConfig.organization_id == organization_id)
    )


def is_proxy_namespace(session: Session, namespace_id: int) -> bool:
    return bool(
        session.scalar(select(exists().where(ProxyCacheConfig.organization_id == namespace_id)))
    )


def upstream_for(settings: Settings, config: ProxyCacheConfig) -> Upstream:
    box = _box(settings)
    return Upstream(
        registry=config.upstream_registry,
        username=box.decrypt(config.username_encrypted) if config.username_encrypted else None,
        password=box.decrypt(config.password_encrypted) if config.password_encrypted else None,
        expiration_s=config.expiration_s,
        insecure=config.insecure,
    )


def namespace_upstream(session: Session, settings: Settings, namespace_id: int) -> Upstream | None:
    config = get_config(session, namespace_id)
    return upstream_for(settings, config) if config is not None else None


def check_upstream_address(settings: Settings, upstream_registry: str, insecure: bool) -> None:
    """Refuse a malformed or blocked upstream; a name with no address yet is accepted."""
    host = upstream_registry.split("/", 1)[0]
    if not host:
        raise ProxyCacheError("Invalid upstream registry")
    scheme = "http" if insecure else "https"
    try:
        outbound.check_url(settings, f"{scheme}://{REGISTRY_HOSTS.get(host, host)}")
    except outbound.UnresolvedHost:
        return
    except outbound.OutboundRefused as exc:
        raise ProxyCacheError(SSRF_MESSAGE) from exc


def has_immutable_tags(session: Session, organization_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists()
                .where(Tag.repository_id == Repository.id, Tag.immutable.is_(True))
                .where(Repository.namespace_user_id == organization_id)
            )
        )
    )


def create_config(
    session: Session,
    settings: Settings,
    organization: User,
    upstream: Upstream,
    *,
    auth: AuthContext,
    ip: str | None,
) -> ProxyCacheConfig:
    if get_config(session, organization.id) is not None:
        raise ProxyCacheError("Proxy Cache Configuration already exists")
    if settings.FEATURE_IMMUTABLE_TAGS and has_immutable_tags(session, organization.id):
        raise ProxyCacheError("Cannot convert organization to proxy cache: immutable tags exist")
    check_upstream_address(settings, upstream.registry, upstream.insecure)
    box = _box(settings)
    config = ProxyCacheConfig(
        organization_id=organization.id,
        upstream_registry=upstream.registry,
        username_encrypted=box.encrypt(upstream.username) if upstream.username else None,
        password_encrypted=box.encrypt(upstream.password) if upstream.password else None,
        expiration_s=upstream.expiration_s,
        insecure=upstream.insecure,
    )
    session.add(config)
    session.flush()
    log_action(
        session,
        "create_proxy_cache_config",
        namespace=organization,
        auth=auth,
        ip=ip,
        metadata={"upstream_registry": upstream.registry or None},
    )
    return config


def delete_config(
    session: Session, organization: User, *, auth: AuthContext, ip: str | None
) -> bool:
    deleted = session.execute(
        delete(ProxyCacheConfig).where(ProxyCacheConfig.organization_id == organization.id)
    ).rowcount
    if not deleted:
        return False
    log_action(session, "delete_proxy_cache_config", namespace=organization, auth=auth, ip=ip)
    return True


def new_upstream(
    registry: str,
    username: str | None,
    password: str | None,
    expiration_s: int | None,
    insecure: bool | None,
) -> Upstream:
    return Upstream(
        registry=registry.strip(),
        username=username or None,
        password=password or None,
        expiration_s=DEFAULT_EXPIRATION_S if expiration_s is None else expiration_s,
        insecure=bool(insecure),
    )


def make_room(session: Session, settings: Settings, namespace_id: int, incoming: int) -> None:
    """Before caching an image of `incoming` bytes: end the namespace's cached tags closest to
    expiring until it fits the quota, as Quay does. QuotaExceeded when it cannot fit.

    Ended tags go through the time machine; GC reclaims their storage after it.
    """
    if not quota.enforcement_enabled(settings):
        return
    limit = session.scalar(
        select(NamespaceQuota.limit_bytes).where(NamespaceQuota.namespace_id == namespace_id)
    )
    if limit is None:
        return
    if incoming > limit:
        raise quota.QuotaExceeded(namespace_id)
    excess = quota.compute_namespace_size(session, namespace_id) + incoming - limit
    if excess <= 0:
        return
    now = tags.now_ms()
    candidates = session.execute(
        select(Tag, Manifest.layers_compressed_size)
        .join(Repository, Repository.id == Tag.repository_id)
        .join(Manifest, Manifest.id == Tag.manifest_id)
        .where(
            Repository.namespace_user_id == namespace_id,
            Tag.hidden.is_(False),
            Tag.immutable.is_(False),
            tags.alive_at(now),
        )
        .order_by(Tag.lifetime_end_ms.is_(None), Tag.lifetime_end_ms, Tag.lifetime_start_ms)
    ).all()
    for tag, size in candidates:
        tag.lifetime_end_ms = now
        excess -= size or 0
        if excess <= 0:
            session.flush()
            return
    raise quota.QuotaExceeded(namespace_id)
