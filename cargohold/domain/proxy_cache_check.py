"""Checking an upstream before an organization becomes its pull-through cache.

Kept apart from `proxy_cache` because the upstream client is built on that module's types.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.domain import proxy_cache
from cargohold.domain.proxy_upstream import (
    UpstreamAuthError,
    UpstreamBlocked,
    UpstreamClient,
    UpstreamError,
)

LOGIN_FAILED = "Failed login to remote registry. Please verify entered details and try again."
CHECK_FAILED = "Failed to validate Proxy cache configuration"


def require_unconfigured(session: Session, organization: User) -> None:
    """Checked before the body is read, as the endpoint always has."""
    if proxy_cache.get_config(session, organization.id) is not None:
        raise proxy_cache.ProxyCacheError("Proxy Cache Configuration already exists")


def check_new_upstream(session: Session, settings: Settings, upstream: proxy_cache.Upstream) -> str:
    """Log in to the upstream: "Valid" with the credentials, "Anonymous" when it needs none."""
    proxy_cache.check_upstream_address(settings, upstream.registry, upstream.insecure)
    # The upstream may be slow; the request's transaction has nothing to keep open meanwhile.
    session.rollback()
    try:
        with UpstreamClient(settings, upstream, None) as client:
            status = client.ping()
    except UpstreamAuthError as exc:
        raise proxy_cache.ProxyCacheError(LOGIN_FAILED) from exc
    except UpstreamBlocked as exc:
        raise proxy_cache.ProxyCacheError(proxy_cache.SSRF_MESSAGE) from exc
    except UpstreamError as exc:
        raise proxy_cache.ProxyCacheError(CHECK_FAILED) from exc
    if status == 200:
        return "Valid"
    if status == 401:
        return "Anonymous"
    raise proxy_cache.ProxyCacheError(CHECK_FAILED)
