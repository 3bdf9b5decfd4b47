"""The /v2 ASGI app: routes by regular expression (repository names contain slashes)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from cargohold.config import Settings
from cargohold.db.session import SessionFactory
from cargohold.domain.errors import DomainError
from cargohold.domain.login_backoff import THROTTLED_MESSAGE, LoginThrottled
from cargohold.registry import auth, blobs, content
from cargohold.registry.context import Registry
from cargohold.registry.errors import PlainError, RegistryError, registry_error_for
from cargohold.registry.http import ClientDisconnected, Request, send
from cargohold.storage.base import BlobStore

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[None]]

# (pattern, {method: handler}); a `name` group is a repository path, checked before dispatch.
_REPO = r"(?P<name>[^/].*?)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^/v2/$"), {"GET": auth.base, "HEAD": auth.base}),
    (re.compile(r"^/v2$"), {"GET": auth.redirect_base, "HEAD": auth.redirect_base}),
    (re.compile(r"^/v2/auth$"), {"GET": auth.token}),
    (re.compile(r"^/v2/_catalog$"), {"GET": content.catalog}),
    (
        re.compile(rf"^/v2/{_REPO}/manifests/(?P<ref>[^/]+)$"),
        {
            "GET": content.get_manifest,
            "HEAD": content.get_manifest,
            "PUT": content.put_manifest,
            "DELETE": content.delete_manifest,
        },
    ),
    (
        re.compile(rf"^/v2/{_REPO}/blobs/uploads/?$"),
        {"POST": blobs.start_upload},
    ),
    (
        re.compile(rf"^/v2/{_REPO}/blobs/uploads/(?P<uuid>[^/]+)$"),
        {
            "GET": blobs.upload_status,
            "PATCH": blobs.patch_upload,
            "PUT": blobs.put_upload,
            "DELETE": blobs.cancel_upload,
        },
    ),
    (
        re.compile(rf"^/v2/{_REPO}/blobs/(?P<digest>[^/]+)$"),
        {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob},
    ),
    (re.compile(rf"^/v2/{_REPO}/tags/list$"), {"GET": content.list_tags}),
    (re.compile(rf"^/v2/{_REPO}/referrers/(?P<digest>[^/]+)$"), {"GET": content.list_referrers}),
]


class RegistryApp:
    def __init__(
        self, settings: Settings, session_factory: SessionFactory, store: BlobStore
    ) -> None:
        self.registry = Registry(settings, session_factory, store)

    def close(self) -> None:
        self.registry.close()

    async def __call__(self, scope: dict[str, Any], receive, send_fn) -> None:
        request = Request(scope, receive)
        head = request.method == "HEAD"
        try:
            try:
                await self._dispatch(request, send_fn)
            except DomainError as refusal:
                raise registry_error_for(refusal, request.path) from refusal
        except RegistryError as exc:
            await request.discard_body()
            await send(
                send_fn,
                exc.status,
                exc.body(),
                exc.headers,
                content_type="application/json",
                head=head,
            )
        except PlainError as exc:
            await send(
                send_fn,
                exc.status,
                exc.body,
                exc.headers,
                content_type="application/json",
                head=head,
            )
        except LoginThrottled as exc:
            await send(
                send_fn,
                429,
                THROTTLED_MESSAGE.encode(),
                exc.headers,
                content_type="text/html; charset=utf-8",
                head=head,
            )
        except ClientDisconnected:
            return
        except Exception:
            log.exception("registry error on %s %s", request.method, request.path)
            error = RegistryError("UNKNOWN", "internal server error")
            await send(send_fn, 500, error.body(), content_type="application/json", head=head)

    async def _dispatch(self, request: Request, send_fn) -> None:
        for pattern, methods in ROUTES:
            match = pattern.match(request.path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                raise RegistryError("UNSUPPORTED", "method not allowed")
            groups = match.groupdict()
            name = groups.pop("name", None)
            if name is None:
                await handler(self.registry, request, send_fn)
                return
            path = self.registry.repo_path(name)
            await handler(self.registry, request, send_fn, path, *groups.values())
            return
        raise RegistryError("NAME_UNKNOWN", "unknown registry path", status=404)
