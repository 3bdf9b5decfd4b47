"""What the build worker reads from the database before a build's slow work starts.

A claimed queue item names a build; `claimed_build` turns it into a `BuildSpec` (source,
tags, credentials, who the push is for) or finishes the item when there is nothing to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.models.accounts import RobotAccountToken
from cargohold.db.models.builds import RepositoryBuild, UserFile
from cargohold.domain import builds as build_rules
from cargohold.domain import queue, robots, triggers


@dataclass
class BuildSpec:
    """Everything one build needs, read before the slow work starts; secrets decrypted."""

    build_id: int
    build_uuid: str
    phase: str
    repository: str
    tags: list[str]
    dockerfile_path: str
    context_dir: str
    trigger_metadata: dict[str, Any]
    archive_url: str | None
    user_file_digest: str | None
    deploy_key: str | None
    pull_robot: tuple[str, str] | None
    on_behalf_of: str


def claimed_build(
    session: Session, settings: Settings, claimed: queue.ClaimedItem
) -> BuildSpec | None:
    """The build a queue item names, or None (the item completed) when it is gone or has
    already ended; a build that ended in an internal error runs again."""
    build = build_rules.find_build(session, claimed.body.get("build_uuid", ""))
    ended = build_rules.TERMINAL_PHASES - {build_rules.INTERNAL_ERROR}
    if build is None or build.phase in ended:
        queue.complete(session, claimed)
        return None
    return _spec(session, settings, build)


def _spec(session: Session, settings: Settings, build: RepositoryBuild) -> BuildSpec:
    config = build_rules.job_config(build)
    digest = None
    if build.resource_key:
        digest = session.scalar(select(UserFile.digest).where(UserFile.uuid == build.resource_key))
    deploy_key = triggers.private_key(settings, build.trigger) if build.trigger else None
    return BuildSpec(
        build_id=build.id,
        build_uuid=build.uuid,
        phase=build.phase,
        repository=build.repository.full_name,
        tags=config.get("docker_tags") or ["latest"],
        dockerfile_path=config.get("build_subdir") or "/Dockerfile",
        context_dir=config.get("context") or "/",
        trigger_metadata=config.get("trigger_metadata") or {},
        archive_url=config.get("archive_url"),
        user_file_digest=digest,
        deploy_key=deploy_key,
        pull_robot=_pull_robot(session, settings, build),
        on_behalf_of=_performer(build, config),
    )


def _pull_robot(
    session: Session, settings: Settings, build: RepositoryBuild
) -> tuple[str, str] | None:
    """The pull robot's name and secret, or None without one (or when its token is gone)."""
    if build.pull_robot is None:
        return None
    record = session.scalar(
        select(RobotAccountToken).where(RobotAccountToken.robot_id == build.pull_robot.id)
    )
    secret = robots.read_token(settings, record) if record is not None else None
    if secret is None:
        return None
    return build.pull_robot.username, secret


def _performer(build: RepositoryBuild, config: dict[str, Any]) -> str:
    """Who a build pushes for: its requester, else its trigger's owner, else the namespace."""
    if config.get("manual_user"):
        return config["manual_user"]
    if build.trigger is not None and build.trigger.connected_user is not None:
        return build.trigger.connected_user.username
    return build.repository.namespace_user.username
