"""What every /v2 handler shares: settings, database, storage, keys, and the access checks."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from cargohold.auth.credentials import PasswordCheckCache
from cargohold.config import Settings
from cargohold.db.models.registry import RepositoryState
from cargohold.db.session import DbSession, SessionFactory
from cargohold.domain import quota, repositories, uploads
from cargohold.domain.permissions import is_mirror_robot
from cargohold.domain.registry_audit import Actor, PullLog
from cargohold.domain.repositories import RepositoryRef
from cargohold.domain.service_keys import KeyRing
from cargohold.registry.errors import PlainError, RegistryError
from cargohold.registry.http import Request
from cargohold.registry.tokens import ANONYMOUS, Identity, TokenError, TokenVerifier
from cargohold.storage.base import BlobStore
from cargohold.thread_pool import LifoThreadPool

T = TypeVar("T")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
READ_ONLY_MESSAGE = (
    "System is currently read-only. Pulls will succeed but all write operations are "
    "currently suspended."
)


@dataclass(frozen=True)
class RepoPath:
    namespace: str
    name: str

    @property
    def full(self) -> str:
        return f"{self.namespace}/{self.name}"


class Registry:
    def __init__(
        self, settings: Settings, session_factory: SessionFactory, store: BlobStore
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.store = store
        self.keys = KeyRing(settings, session_factory)
        self.passwords = PasswordCheckCache(settings.SECRET_KEY)
        self.verifier = TokenVerifier(self.keys, settings)
        self.pull_log = PullLog(session_factory)
        self.executor = LifoThreadPool(max_workers=48, thread_name_prefix="registry")
        self.realm = f"{settings.server_url}/v2/auth"
        self.service = settings.SERVER_HOSTNAME

    def close(self) -> None:
        self.pull_log.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    # --- names -------------------------------------------------------------------------
    def repo_path(self, raw: str) -> RepoPath:
        namespace, _, name = raw.partition("/")
        if (
            not name
            or not (2 <= len(namespace) <= 255)
            or not _NAMESPACE_RE.match(namespace)
            or not repositories.valid_repository_name(
                name, self.settings.FEATURE_EXTENDED_REPOSITORY_NAMES
            )
        ):
            raise RegistryError("NAME_INVALID", f"Invalid repository name: {raw}")
        return RepoPath(namespace, name)

    # --- authentication ----------------------------------------------------------------
    def challenge(self, scope: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm}",service="{self.service}"'
        if scope:
            value += f',scope="{scope}"'
        return {"WWW-Authenticate": value}

    def unauthorized(self, path: RepoPath, actions: str) -> RegistryError:
        return RegistryError(
            "UNAUTHORIZED",
            detail=[
                {"Type": "repository", "Name": path.full, "Action": a} for a in actions.split(",")
            ],
            headers=self.challenge(f"repository:{path.full}:{actions}"),
        )

    async def identity(self, request: Request, path: RepoPath | None = None) -> Identity:
        header = request.header(b"authorization")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        scope = f"repository:{path.full}:pull" if path is not None else None
        if scheme.lower() != "bearer" or not token:
            raise PlainError(401, {"error": "Invalid bearer token format"}, self.challenge(scope))
        try:
            return self.verifier.verify_cached(token) or await self.run(self.verifier.verify, token)
        except TokenError as exc:
            raise PlainError(401, {"error": str(exc)}, self.challenge(scope)) from exc

    async def access(self, request: Request, path: RepoPath, action: str) -> Identity:
        """The caller, when its token grants `action` (anonymous pulls are checked later)."""
        identity = await self.identity(request, path)
        if action == "pull":
            if not identity.is_anonymous and not identity.may(path.full, "pull"):
                raise self.unauthorized(path, "pull")
            return identity
        if not identity.may(path.full, action):
            raise self.unauthorized(path, "pull,push" if action == "push" else action)
        if self.settings.REGISTRY_STATE == "readonly":
            raise RegistryError(
                "DENIED", READ_ONLY_MESSAGE, status=405, extra={"is_readonly": True}
            )
        return identity

    def check_repository(
        self,
        ref: RepositoryRef | None,
        path: RepoPath,
        identity: Identity,
        action: str,
        *,
        mirror_pusher: bool = False,
    ) -> RepositoryRef:
        """The repository, once the caller may act on it; 401 for callers without a grant.

        A MIRROR repository takes pushes only from its mirror robot (`mirror_pusher`).
        """
        if identity.is_anonymous and (
            ref is None
            or not ref.public
            or action != "pull"
            or not self.settings.FEATURE_ANONYMOUS_ACCESS
        ):
            raise self.unauthorized(path, action if action == "pull" else "pull,push")
        if ref is None:
            raise RegistryError("NAME_UNKNOWN", "repository not found", {"name": path.full})
        if ref.kind != "image":
            raise RegistryError(
                "UNSUPPORTED",
                f"This repository is for managing {ref.kind} and not container images.",
            )
        if action == "push" and ref.state != RepositoryState.NORMAL and not mirror_pusher:
            raise self.unauthorized(path, "pull,push")
        return ref

    def repository(
        self, session: DbSession, path: RepoPath, identity: Identity, action: str
    ) -> RepositoryRef:
        ref = repositories.find_repository_ref(session, path.namespace, path.name)
        mirror_pusher = (
            action == "push"
            and ref is not None
            and ref.state == RepositoryState.MIRROR
            and is_mirror_robot(session, ref.id, identity.username)
        )
        return self.check_repository(ref, path, identity, action, mirror_pusher=mirror_pusher)

    # --- refusals ------------------------------------------------------------------------
    @contextmanager
    def refusals_kept(self, session: DbSession, *, undo_writes: bool = False) -> Iterator[None]:
        """Commit what a refusal leaves behind before it propagates: an upload the domain
        dropped stays dropped, and a quota refusal notifies the namespace's admins.

        `undo_writes` first discards what the refused request wrote (a pushed manifest).
        """
        try:
            yield
        except (uploads.UploadLost, uploads.DigestMismatch):
            session.commit()
            raise
        except quota.QuotaExceeded as exc:
            if undo_writes:
                session.rollback()
            quota.notify_refusal(session, self.settings, exc)
            session.commit()
            raise

    # --- audit ---------------------------------------------------------------------------
    def actor(self, identity: Identity, request: Request) -> Actor:
        """The caller as audit entries name it."""
        return Actor(
            identity.username, identity.kind, request.client_ip, request.header(b"user-agent")
        )

    def record_pull(
        self,
        ref: RepositoryRef,
        path: RepoPath,
        identity: Identity,
        request: Request,
        metadata: dict[str, Any],
    ) -> None:
        self.pull_log.record(
            ref, path.namespace, path.name, self.actor(identity, request), metadata
        )
