"""Performing one mirror sync with skopeo: list upstream tags, copy the matching ones, prune.

Copies go through this registry's own /v2 endpoint as the mirror robot, exactly like any
other push. Unlike Quay, local tags are pruned only after a fully successful sync, so a
flaky upstream can never empty a mirror; tags whose upstream digest did not change are not
copied again.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cargohold.config import Settings
from cargohold.db.models.accounts import RobotAccountToken
from cargohold.db.models.mirror import RepoMirrorConfig, SyncStatus
from cargohold.db.models.registry import Repository
from cargohold.domain import mirror, notification_events, repo_notifications, robots, tags
from cargohold.domain.audit import log_action
from cargohold.workers.heartbeat import Heartbeat, dies_with_worker

log = logging.getLogger(__name__)
SKOPEO = os.environ.get("CARGOHOLD_SKOPEO", "skopeo")
_OUTPUT_LIMIT = 4000


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


@dataclass
class SkopeoResult:
    ok: bool
    stdout: str
    stderr: str


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


def _authfile(directory: Path, name: str, host: str, credentials: tuple[str, str] | None) -> str:
    auths = {}
    if credentials is not None:
        encoded = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        auths[host] = {"auth": encoded}
    path = directory / name
    path.write_text(json.dumps({"auths": auths}))
    path.chmod(0o600)
    return str(path)


class Skopeo:
    """skopeo calls for one sync, with its credentials in private temporary auth files."""

    def __init__(self, settings: Settings, plan: SyncPlan, workdir: Path) -> None:
        self.plan = plan
        self.source_auth = _authfile(
            workdir, "source.json", mirror.registry_host(plan.reference), plan.source_auth
        )
        self.destination = destination_host(settings)
        self.dest_auth = _authfile(workdir, "dest.json", self.destination, plan.robot_auth)
        self.dest_tls = settings.REPO_MIRROR_TLS_VERIFY and settings.PREFERRED_URL_SCHEME == "https"
        self.env = {**os.environ, "HOME": str(workdir)}
        for key, value in plan.proxy.items():
            if value:
                self.env[key.upper()] = str(value)

    def _redact(self, text: str) -> str:
        for secret in self.plan.secrets:
            text = text.replace(secret, "********")
        return text[-_OUTPUT_LIMIT:]

    def run(self, *args: str) -> SkopeoResult:
        try:
            done = subprocess.run(
                dies_with_worker([SKOPEO, *args]),
                capture_output=True,
                env=self.env,
                timeout=self.plan.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return SkopeoResult(False, "", f"skopeo timed out after {exc.timeout} seconds")
        except OSError as exc:
            return SkopeoResult(False, "", f"skopeo could not be started: {exc}")
        return SkopeoResult(
            done.returncode == 0,
            self._redact(done.stdout.decode(errors="replace")),
            self._redact(done.stderr.decode(errors="replace")),
        )

    def _source_flags(self) -> list[str]:
        return [f"--tls-verify={str(self.plan.verify_tls).lower()}", "--authfile", self.source_auth]

    def list_tags(self) -> tuple[list[str] | None, SkopeoResult]:
        result = self.run("list-tags", *self._source_flags(), f"docker://{self.plan.reference}")
        if not result.ok:
            return None, result
        try:
            found = json.loads(result.stdout).get("Tags") or []
        except (ValueError, AttributeError):
            return None, SkopeoResult(False, result.stdout, "unreadable list-tags output")
        return [str(tag) for tag in found], result

    def upstream_digest(self, tag: str) -> str | None:
        """The digest of the upstream manifest (the index for multi-arch images)."""
        result = self.run(
            "inspect", "--raw", *self._source_flags(), f"docker://{self.plan.reference}:{tag}"
        )
        if not result.ok:
            return None
        return "sha256:" + hashlib.sha256(result.stdout.encode()).hexdigest()

    def copy(self, tag: str) -> SkopeoResult:
        plan = self.plan
        policy = ["--insecure-policy"] if plan.unsigned_images else []
        return self.run(
            *policy,
            "copy",
            "--all",
            "--preserve-digests",
            "--remove-signatures",
            f"--src-tls-verify={str(plan.verify_tls).lower()}",
            f"--dest-tls-verify={str(self.dest_tls).lower()}",
            "--src-authfile",
            self.source_auth,
            "--dest-authfile",
            self.dest_auth,
            f"docker://{plan.reference}:{tag}",
            f"docker://{self.destination}/{plan.namespace}/{plan.repository}:{tag}",
        )


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

    def run(self) -> SyncStatus:
        with self.factory() as session:
            config = session.get(RepoMirrorConfig, self.claim.config_id)
            if config is None:
                return SyncStatus.FAIL
            plan = load_plan(session, self.settings, config)
        lease = dt.timedelta(seconds=self.settings.WORKER_HEARTBEAT_TIMEOUT)
        with (
            Heartbeat(self._beat, lease.total_seconds() / 3),
            tempfile.TemporaryDirectory(prefix="cargohold-mirror-") as workdir,
        ):
            outcome = self._sync(plan, Skopeo(self.settings, plan, Path(workdir)))
        with self.factory() as session:
            mirror.release(session, self.claim, outcome)
        return outcome

    def _sync(self, plan: SyncPlan, skopeo: Skopeo) -> SyncStatus:
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
        upstream, listing = skopeo.list_tags()
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
            if not self._copy_tag(plan, skopeo, source, tag):
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

    def _beat(self) -> bool:
        lease = dt.timedelta(seconds=self.settings.WORKER_HEARTBEAT_TIMEOUT)
        with self.factory() as session:
            return mirror.heartbeat(session, self.claim, lease)

    def _is_cancelled(self) -> bool:
        with self.factory() as session:
            return mirror.is_cancelled(session, self.claim)

    def _local_digest(self, plan: SyncPlan, tag: str) -> str | None:
        with self.factory() as session:
            return tags.alive_tag_digest(session, plan.repository_id, tag, tags.now_ms())

    def _copy_tag(self, plan: SyncPlan, skopeo: Skopeo, source: str, tag: str) -> bool:
        local = self._local_digest(plan, tag)
        if local is not None and skopeo.upstream_digest(tag) == local:
            return True
        result = skopeo.copy(tag)
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
