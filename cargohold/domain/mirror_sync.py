"""Performing one mirror sync with skopeo: list upstream tags, copy the matching ones, prune.

Copies go through this registry's own /v2 endpoint as the mirror robot, exactly like any
other push. Unlike Quay, local tags are pruned only after a fully successful sync, so a
flaky upstream can never empty a mirror; tags whose upstream digest did not change are not
copied again.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cargohold.adapters import skopeo
from cargohold.config import Settings
from cargohold.db.models.accounts import RobotAccountToken
from cargohold.db.models.mirror import RepoMirrorConfig, SyncStatus
from cargohold.db.models.registry import Repository
from cargohold.domain import mirror, notification_events, repo_notifications, robots, tags
from cargohold.domain.audit import log_action

log = logging.getLogger(__name__)


@dataclass
class SyncPlan:
    """Everything a sync needs, read from the database before skopeo runs."""

    repository_id: int
    namespace: str
    repository: str
    reference: str
    globs: list[str]
    verify_tls: bool
    unsigned_images: bool
    proxy: dict[str, Any]
    timeout: int
    source_auth: tuple[str, str] | None
    robot_auth: tuple[str, str]
    secrets: list[str] = field(default_factory=list)


def destination_host(settings: Settings) -> str:
    return settings.REPO_MIRROR_SERVER_HOSTNAME or settings.SERVER_HOSTNAME


def load_plan(session: Session, settings: Settings, config: RepoMirrorConfig) -> SyncPlan:
    repository = session.get(Repository, config.repository_id)
    assert repository is not None
    registry_config = json.loads(config.external_registry_config or "{}")
    username = mirror.decrypt_or_marker(settings, config.username_encrypted)
    password = mirror.decrypt_or_marker(settings, config.password_encrypted) or ""
    token_record = session.scalar(
        select(RobotAccountToken).where(RobotAccountToken.robot_id == config.robot_id)
    )
    robot_token = robots.read_token(settings, token_record) if token_record else None
    plan = SyncPlan(
        repository_id=repository.id,
        namespace=repository.namespace_user.username,
        repository=repository.name,
        reference=config.external_reference,
        globs=json.loads(config.rule_value),
        verify_tls=registry_config.get("verify_tls", True) is not False,
        unsigned_images=bool(registry_config.get("unsigned_images", False)),
        proxy=registry_config.get("proxy") or {},
        timeout=config.skopeo_timeout_interval,
        source_auth=(username, password) if username else None,
        robot_auth=(config.robot.username, robot_token or ""),
    )
    plan.secrets = [secret for secret in (password, robot_token) if secret]
    return plan


class MirrorTransfer:
    """The skopeo calls of one sync, with its credentials in private temporary auth files."""

    def __init__(self, settings: Settings, plan: SyncPlan, workdir: Path) -> None:
        self.plan = plan
        self.source_auth = skopeo.write_authfile(
            workdir, "source.json", mirror.registry_host(plan.reference), plan.source_auth
        )
        self.destination = destination_host(settings)
        self.dest_auth = skopeo.write_authfile(
            workdir, "dest.json", self.destination, plan.robot_auth
        )
        self.dest_tls = settings.REPO_MIRROR_TLS_VERIFY and settings.PREFERRED_URL_SCHEME == "https"
        env = {**os.environ, "HOME": str(workdir)}
        for key, value in plan.proxy.items():
            if value:
                env[key.upper()] = str(value)
        self.tool = skopeo.Skopeo(env, plan.timeout, plan.secrets)

    def _source_flags(self) -> list[str]:
        return [skopeo.tls_flag("tls-verify", self.plan.verify_tls), "--authfile", self.source_auth]

    def list_tags(self) -> tuple[list[str] | None, skopeo.SkopeoResult]:
        return self.tool.list_tags(f"docker://{self.plan.reference}", *self._source_flags())

    def upstream_digest(self, tag: str) -> str | None:
        """The digest of the upstream manifest (the index for multi-arch images)."""
        return self.tool.manifest_digest(
            f"docker://{self.plan.reference}:{tag}", *self._source_flags()
        )

    def copy(self, tag: str) -> skopeo.SkopeoResult:
        plan = self.plan
        policy = ["--insecure-policy"] if plan.unsigned_images else []
        copy = skopeo.copy_args(
            f"docker://{plan.reference}:{tag}",
            f"docker://{self.destination}/{plan.namespace}/{plan.repository}:{tag}",
            "--all",
            "--preserve-digests",
            "--remove-signatures",
            skopeo.tls_flag("src-tls-verify", plan.verify_tls),
            skopeo.tls_flag("dest-tls-verify", self.dest_tls),
            "--src-authfile",
            self.source_auth,
            "--dest-authfile",
            self.dest_auth,
        )
        return self.tool.run(*policy, *copy)


def select_tags(upstream: list[str], globs: list[str]) -> list[str]:
    """Tags matching any glob (shell-style, case-sensitive), de-duplicated and sorted."""
    return sorted({tag for tag in upstream if any(fnmatch.fnmatchcase(tag, g) for g in globs)})


def _event_message(data: dict[str, Any]) -> str:
    """What a mirror event reports: the audit message, else the tags and what happened to them."""
    parts = [str(data[key]) for key in ("message", "tags") if data.get(key)]
    if data.get("verb") == "Cancelled":
        parts.insert(0, "Cancelled")
    return ": ".join(parts) or str(data.get("verb") or "")


class SyncRun:
    """One claimed sync, from listing to release."""

    def __init__(
        self, factory: sessionmaker[Session], settings: Settings, claim: mirror.Claim
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.claim = claim

    def audit(self, kind: str, plan: SyncPlan, **metadata: Any) -> None:
        with self.factory() as session:
            repository = session.get(Repository, plan.repository_id)
            if repository is None:
                return
            data = {
                "verb": None,
                "namespace": plan.namespace,
                "repo": plan.repository,
                "message": None,
                "tag": None,
                "tags": None,
                "stdout": None,
                "stderr": None,
            }
            data.update(metadata)
            log_action(
                session,
                kind,
                namespace=repository.namespace_user,
                repository=repository,
                metadata=data,
            )
            # The sync's start and end audit kinds are also its notification events.
            if kind in notification_events.EVENTS:
                repo_notifications.spawn_for_repository(
                    session, self.settings, repository, kind, {"message": _event_message(data)}
                )
            session.commit()

    def load_plan(self) -> SyncPlan | None:
        """The claimed mirror's plan, or None when its configuration is gone."""
        with self.factory() as session:
            config = session.get(RepoMirrorConfig, self.claim.config_id)
            if config is None:
                return None
            return load_plan(session, self.settings, config)

    def sync(self, plan: SyncPlan, workdir: Path) -> SyncStatus:
        """List, copy and prune; skopeo's auth files live in `workdir` (private, temporary)."""
        return self._sync(plan, MirrorTransfer(self.settings, plan, workdir))

    def release(self, outcome: SyncStatus) -> None:
        with self.factory() as session:
            mirror.release(session, self.claim, outcome)

    def _sync(self, plan: SyncPlan, transfer: MirrorTransfer) -> SyncStatus:
        source = f"docker://{plan.reference}"
        try:
            mirror.validate_proxies(self.settings, {"proxy": plan.proxy}, resolved=True)
            mirror.validate_reference(self.settings, plan.reference, resolved=True)
        except mirror.MirrorError as exc:
            self.audit("repo_mirror_sync_failed", plan, verb="end", message=str(exc))
            return SyncStatus.FAIL
        self.audit(
            "repo_mirror_sync_started",
            plan,
            verb="start",
            message=f"'{plan.reference}' with tag pattern '{','.join(plan.globs)}'",
        )
        upstream, listing = transfer.list_tags()
        if upstream is None:
            self.audit(
                "repo_mirror_sync_failed",
                plan,
                verb="end",
                message="skopeo list-tags failed: See output",
                stdout=listing.stdout,
                stderr=listing.stderr,
            )
            return SyncStatus.FAIL
        selected = select_tags(upstream, plan.globs)
        if not selected:
            self.audit("repo_mirror_sync_success", plan, verb="end", tags="No tags matched")
            return SyncStatus.SUCCESS
        failed: list[str] = []
        for tag in selected:
            if self._is_cancelled():
                self.audit(
                    "repo_mirror_sync_failed", plan, verb="Cancelled", tags=", ".join(selected)
                )
                return SyncStatus.CANCEL
            if not self._copy_tag(plan, transfer, source, tag):
                failed.append(tag)
        if self._is_cancelled():
            self.audit("repo_mirror_sync_failed", plan, verb="Cancelled", tags=", ".join(selected))
            return SyncStatus.CANCEL
        if failed:
            annotated = [f"{tag} (FAILED)" if tag in failed else tag for tag in selected]
            partial = len(failed) < len(selected)
            self.audit(
                "repo_mirror_sync_failed",
                plan,
                verb="lost",
                message=f"'{plan.reference}'" + (": PARTIAL SYNC" if partial else ""),
                tags=", ".join(annotated),
            )
            return SyncStatus.FAIL
        removed = self._prune(plan, set(selected))
        self.audit(
            "repo_mirror_sync_success",
            plan,
            verb="end",
            message=f"'{plan.reference}'",
            tags=", ".join(selected),
            removed=removed,
        )
        return SyncStatus.SUCCESS

    def beat(self) -> bool:
        """Push the claim's expiration forward; False once the claim was lost."""
        lease = dt.timedelta(seconds=self.settings.WORKER_HEARTBEAT_TIMEOUT)
        with self.factory() as session:
            return mirror.heartbeat(session, self.claim, lease)

    def _is_cancelled(self) -> bool:
        with self.factory() as session:
            return mirror.is_cancelled(session, self.claim)

    def _local_digest(self, plan: SyncPlan, tag: str) -> str | None:
        with self.factory() as session:
            return tags.alive_tag_digest(session, plan.repository_id, tag, tags.now_ms())

    def _copy_tag(self, plan: SyncPlan, transfer: MirrorTransfer, source: str, tag: str) -> bool:
        local = self._local_digest(plan, tag)
        if local is not None and transfer.upstream_digest(tag) == local:
            return True
        result = transfer.copy(tag)
        kind = "repo_mirror_sync_tag_success" if result.ok else "repo_mirror_sync_tag_failed"
        outcome = "successful sync" if result.ok else "failed to sync"
        self.audit(
            kind,
            plan,
            verb="finish",
            message=f"Source '{source}:{tag}' {outcome}",
            tag=tag,
            stdout=result.stdout,
            stderr=result.stderr,
        )
        return result.ok

    def _prune(self, plan: SyncPlan, keep: set[str]) -> list[str]:
        """Remove local tags that are gone upstream (or no longer match the rule)."""
        removed: list[str] = []
        with self.factory() as session:
            after: str | None = None
            while True:
                names, more = tags.list_tag_names(
                    session, plan.repository_id, limit=500, after=after
                )
                removed.extend(name for name in names if name not in keep)
                if not more or not names:
                    break
                after = names[-1]
            for name in list(removed):
                try:
                    tags.delete_tag(session, plan.repository_id, name)
                except tags.TagImmutable:
                    removed.remove(name)
            session.commit()
        return removed
