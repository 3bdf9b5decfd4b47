"""Build rules: what to build, which tags it gets, queueing, phases, cancel and the log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.builds import BuildLogEntry, BuildTrigger, RepositoryBuild
from cargohold.db.models.queue import QueueItem
from cargohold.db.models.registry import Repository
from cargohold.domain import notification_events as events
from cargohold.domain import queue, repo_notifications, untrusted_json
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid

BUILD_QUEUE = "dockerfilebuild"
BUILD_RETRIES = 3

WAITING = "waiting"
BUILD_SCHEDULED = "build-scheduled"
UNPACKING = "unpacking"
PULLING = "pulling"
BUILDING = "building"
PUSHING = "pushing"
COMPLETE = "complete"
ERROR = "error"
INTERNAL_ERROR = "internalerror"
CANCELLED = "cancelled"
EXPIRED = "expired"

TERMINAL_PHASES = frozenset({COMPLETE, ERROR, INTERNAL_ERROR, CANCELLED})
CANCELLABLE_PHASES = frozenset({WAITING, BUILD_SCHEDULED, UNPACKING, PULLING, BUILDING})

COMMIT_PATTERN = "^([A-Fa-f0-9]{7,})$"
REF_PATTERN = "^refs/(heads|tags|remotes)/(.+)$"
_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.\-]")
_TEMPLATE_EXPR = re.compile(r"\$\{([^}]+)\}")
MAX_TAG_LENGTH = 127


class BuildError(Invalid):
    """A build request breaks a rule; the message is what the client is shown."""


class TriggerDisabled(BuildError):
    pass


class WebhookRefused(Invalid):
    """A push webhook that cannot start a build; its caller gets an `{"error": ...}` body."""


WEBHOOK_TRIGGER_DISABLED = "This build trigger is currently disabled. Please re-enable to continue."


# --- repositories and robots -----------------------------------------------------------------


def lookup_robot(session: Session, name: str) -> User | None:
    return session.scalar(
        select(User).where(User.username == name, User.robot.is_(True), User.deleted.is_(False))
    )


def robot_namespace_name(robot_name: str) -> str:
    return robot_name.split("+", 1)[0]


# --- Dockerfile path and context -------------------------------------------------------------


def resolve_dockerfile_and_context(
    dockerfile_path: str | None, context: str | None, subdirectory: str | None
) -> tuple[str, str]:
    """Quay's rules for a build request's Dockerfile path and context directory."""
    if dockerfile_path:
        if context:
            return dockerfile_path, context
        return dockerfile_path, posixpath.dirname(dockerfile_path)
    if subdirectory:
        base = subdirectory if subdirectory.endswith("/") else subdirectory + "/"
        return base + "Dockerfile", subdirectory
    if context:
        base = context if context.endswith("/") else context + "/"
        return base + "Dockerfile", context
    return "/Dockerfile", "/"


# --- tags ------------------------------------------------------------------------------------


def escape_tag(name: str) -> str:
    """A valid tag from any string: leading non-word char and invalid chars become `_`."""
    escaped = _TAG_INVALID.sub("_", name)
    if escaped and not re.match(r"\w", escaped[0]):
        escaped = "_" + escaped[1:]
    escaped = escaped[:MAX_TAG_LENGTH]
    return escaped or "latest"


def parse_ref(ref: str | None) -> tuple[str, str] | None:
    """`refs/heads/x` -> ("branch", "x"); tags and remotes likewise; None otherwise."""
    if not ref:
        return None
    match = re.match(REF_PATTERN, ref)
    if not match:
        return None
    kind = {"heads": "branch", "tags": "tag", "remotes": "remote"}[match.group(1)]
    return kind, match.group(2)


def _lookup_path(document: Any, path: str) -> Any:
    current = document
    for part in path.strip().removeprefix("$.").split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _template_values(metadata: dict[str, Any]) -> dict[str, Any]:
    values = json.loads(json.dumps(metadata))
    commit = values.get("commit") or ""
    values.setdefault("commit_info", {})
    if isinstance(values["commit_info"], dict):
        values["commit_info"]["short_sha"] = commit[:7]
    parsed = parse_ref(values.get("ref"))
    if parsed is not None:
        values["parsed_ref"] = {parsed[0]: parsed[1]}
    return values


def _render_template(template: str, values: dict[str, Any]) -> str | None:
    expressions = _TEMPLATE_EXPR.findall(template)
    resolved = {}
    for expression in expressions:
        value = _lookup_path(values, expression)
        if value is None or isinstance(value, dict | list):
            return None
        resolved[expression] = str(value)
    return _TEMPLATE_EXPR.sub(lambda match: resolved[match.group(1)], template)


def compute_tags(config: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    """The tags a trigger build pushes, from the trigger's rules and the commit metadata."""
    tags: set[str] = set()
    values = _template_values(metadata)
    for template in config.get("tag_templates") or []:
        rendered = _render_template(str(template), values)
        if rendered:
            tags.add(rendered)
    parsed = parse_ref(metadata.get("ref"))
    if parsed is not None:
        if config.get("default_tag_from_ref", True):
            tags.add(parsed[1])
        if config.get("latest_for_default_branch", True) and parsed[1] == metadata.get(
            "default_branch"
        ):
            tags.add("latest")
    if not tags:
        tags.add((metadata.get("commit") or "")[:7])
    return sorted({escape_tag(tag) for tag in tags})


def ref_matches(branchtag_regex: str | None, ref: str | None) -> bool:
    """Whether a pushed ref passes the trigger's filter (an unusable regex lets all through)."""
    if not branchtag_regex:
        return True
    if not ref:
        return False
    try:
        pattern = re.compile(branchtag_regex)
    except re.error:
        return True
    return pattern.fullmatch(ref.removeprefix("refs/")) is not None


def should_skip(config: dict[str, Any], metadata: dict[str, Any]) -> bool:
    if not ref_matches(config.get("branchtag_regex"), metadata.get("ref")):
        return True
    message = (metadata.get("commit_info") or {}).get("message") or ""
    return "[skip build]" in message or "[build skip]" in message


# --- webhook payloads ------------------------------------------------------------------------


def _require(document: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        if key not in document:
            raise BuildError(f"'{key}' is a required property")


def _require_string(value: Any, pattern: str | None = None) -> None:
    if not isinstance(value, str):
        raise BuildError(f"{value!r} is not of type 'string'")
    if pattern and not re.match(pattern, value):
        raise BuildError(f"{value!r} does not match {pattern!r}")


def _validate_person(person: Any) -> None:
    if not isinstance(person, dict):
        raise BuildError(f"{person!r} is not of type 'object'")
    _require(person, ["username", "url", "avatar_url"])
    for key in ("username", "url", "avatar_url"):
        _require_string(person[key])


def validate_custom_payload(payload: Any) -> dict[str, Any]:
    """The custom-git webhook schema; returns the commit metadata it describes."""
    if not isinstance(payload, dict):
        raise BuildError(f"{payload!r} is not of type 'object'")
    _require(payload, ["commit", "ref", "default_branch"])
    _require_string(payload["commit"], COMMIT_PATTERN)
    _require_string(payload["ref"], REF_PATTERN)
    _require_string(payload["default_branch"])
    metadata = {
        "commit": payload["commit"],
        "ref": payload["ref"],
        "default_branch": payload["default_branch"],
    }
    if "commit_info" in payload:
        info = payload["commit_info"]
        if not isinstance(info, dict):
            raise BuildError(f"{info!r} is not of type 'object'")
        _require(info, ["url", "message", "date"])
        for key in ("url", "message", "date"):
            _require_string(info[key])
        for person in ("author", "committer"):
            if person in info:
                _validate_person(info[person])
        metadata["commit_info"] = {
            key: info[key]
            for key in ("url", "message", "date", "author", "committer")
            if key in info
        }
    return metadata


def _github_person(person: Any) -> dict[str, Any] | None:
    if not isinstance(person, dict) or not person.get("username"):
        return None
    return {"username": person["username"], "url": "", "avatar_url": ""}


def convert_github_payload(payload: Any) -> dict[str, Any] | None:
    """A GitHub-style push payload as commit metadata, or None when it is not one."""
    if not isinstance(payload, dict):
        return None
    head = payload.get("head_commit")
    ref = payload.get("ref")
    repository = payload.get("repository")
    if not isinstance(head, dict) or not isinstance(ref, str) or not isinstance(repository, dict):
        return None
    commit = head.get("id")
    if not isinstance(commit, str) or not re.match(COMMIT_PATTERN, commit):
        return None
    if not re.match(REF_PATTERN, ref):
        return None
    default_branch = repository.get("default_branch") or repository.get("master_branch")
    info: dict[str, Any] = {
        "url": head.get("url") or "",
        "message": head.get("message") or "",
        "date": head.get("timestamp") or "",
    }
    for key in ("author", "committer"):
        person = _github_person(head.get(key))
        if person is not None:
            info[key] = person
    return {
        "commit": commit,
        "ref": ref,
        "default_branch": default_branch or "master",
        "commit_info": info,
    }


def metadata_from_webhook(raw_body: bytes, build_source: str) -> dict[str, Any]:
    """Parse a custom-git webhook body into commit metadata (BuildError when unusable)."""
    if not raw_body.strip():
        raise BuildError("Missing expected payload")
    try:
        payload = untrusted_json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BuildError("Missing expected payload") from exc
    try:
        metadata = validate_custom_payload(payload)
    except BuildError:
        converted = convert_github_payload(payload)
        if converted is None:
            raise
        metadata = converted
    metadata["git_url"] = build_source
    return metadata


def manual_metadata(build_source: str, commit_sha: Any) -> dict[str, Any]:
    if commit_sha is None:
        raise BuildError("missing required parameter")
    _require_string(commit_sha, COMMIT_PATTERN)
    return {"commit": commit_sha, "git_url": build_source}


# --- starting builds -------------------------------------------------------------------------


@dataclass
class BuildRequest:
    repository: Repository
    display_name: str
    dockerfile_path: str
    context: str
    tags: list[str]
    is_manual: bool
    manual_user: User | None = None
    trigger: BuildTrigger | None = None
    trigger_metadata: dict[str, Any] = field(default_factory=dict)
    pull_robot: User | None = None
    resource_key: str | None = None
    archive_url: str | None = None


def check_archive_url(settings: Settings, archive_url: str) -> None:
    """An archive URL must aim at an allowed host; a name with no address yet may wait."""
    try:
        outbound.check_url(settings, archive_url)
    except outbound.UnresolvedHost:
        return
    except outbound.OutboundRefused as exc:
        raise BuildError(f"Invalid Archive URL: {exc}") from exc


def start_trigger_build(
    session: Session,
    settings: Settings,
    trigger: BuildTrigger,
    metadata: dict[str, Any],
    *,
    manual_user: User | None = None,
    auth: AuthContext | None = None,
    ip: str | None = None,
) -> RepositoryBuild:
    """A build of the commit in `metadata` as `trigger` configures it: pushed, or started by
    `manual_user` (TriggerDisabled while the trigger is off)."""
    config = json.loads(trigger.config_json or "{}")
    dockerfile_path, context = resolve_dockerfile_and_context(
        config.get("dockerfile_path"), config.get("context"), None
    )
    return start_build(
        session,
        settings,
        BuildRequest(
            repository=trigger.repository,
            display_name=metadata["commit"][:7],
            dockerfile_path=dockerfile_path,
            context=context,
            tags=compute_tags(config, metadata),
            is_manual=manual_user is not None,
            manual_user=manual_user,
            trigger=trigger,
            trigger_metadata=metadata,
            pull_robot=trigger.pull_robot,
        ),
        auth=auth,
        ip=ip,
    )


def build_from_webhook(
    session: Session, settings: Settings, trigger: BuildTrigger, raw_body: bytes
) -> RepositoryBuild | None:
    """The build a custom-git push asks for; None when the trigger's filters skip the commit."""
    config = json.loads(trigger.config_json or "{}")
    try:
        metadata = metadata_from_webhook(raw_body, config["build_source"])
    except BuildError as exc:
        raise WebhookRefused(exc.message) from exc
    if should_skip(config, metadata):
        return None
    if not trigger.enabled:
        raise WebhookRefused(WEBHOOK_TRIGGER_DISABLED)
    return start_trigger_build(session, settings, trigger, metadata)


def archive_display_name(archive_url: str) -> str:
    return hashlib.sha224(archive_url.encode()).hexdigest()[:7]


def start_build(
    session: Session,
    settings: Settings,
    request: BuildRequest,
    *,
    auth: AuthContext | None = None,
    ip: str | None = None,
) -> RepositoryBuild:
    """Create the build row, queue it and write `build_dockerfile` (caller commits)."""
    trigger = request.trigger
    if trigger is not None and not trigger.enabled:
        raise TriggerDisabled("Build trigger is disabled")
    job_config = {
        "docker_tags": request.tags,
        "registry": settings.SERVER_HOSTNAME,
        "build_subdir": request.dockerfile_path,
        "context": request.context,
        "trigger_metadata": request.trigger_metadata,
        "is_manual": request.is_manual,
        "manual_user": request.manual_user.username if request.manual_user else None,
        "archive_url": request.archive_url,
    }
    build = RepositoryBuild(
        repository_id=request.repository.id,
        phase=WAITING,
        display_name=request.display_name,
        job_config_json=json.dumps(job_config),
        trigger_id=trigger.id if trigger else None,
        pull_robot_id=request.pull_robot.id if request.pull_robot else None,
        resource_key=request.resource_key,
    )
    session.add(build)
    session.flush()
    item = queue.enqueue(session, BUILD_QUEUE, {"build_uuid": build.uuid}, retries=BUILD_RETRIES)
    session.flush()
    build.queue_id = item.id
    metadata: dict[str, Any] = {
        "build_id": build.uuid,
        "docker_tags": request.tags,
        "repo": request.repository.name,
        "namespace": request.repository.namespace_user.username,
        "is_manual": request.is_manual,
        "manual_user": job_config["manual_user"],
    }
    if trigger is not None:
        metadata.update(
            trigger_id=trigger.uuid,
            trigger_kind=trigger.service,
            trigger_metadata=request.trigger_metadata,
            trigger_manual=request.is_manual,
        )
    repo_notifications.spawn_for_repository(
        session,
        settings,
        request.repository,
        events.BUILD_QUEUED,
        metadata,
        performer=repo_notifications.performer_data(request.manual_user, auth),
        subpage=f"/build/{build.uuid}",
    )
    log_action(
        session,
        "build_dockerfile",
        namespace=request.repository.namespace_user,
        performer=request.manual_user,
        auth=auth if request.manual_user is not None else None,
        repository=request.repository,
        ip=ip,
        metadata=metadata,
    )
    return build


# --- reading builds --------------------------------------------------------------------------


def job_config(build: RepositoryBuild) -> dict[str, Any]:
    return json.loads(build.job_config_json or "{}")


def find_build(session: Session, build_uuid: str) -> RepositoryBuild | None:
    return session.scalar(
        select(RepositoryBuild)
        .options(
            joinedload(RepositoryBuild.repository).joinedload(Repository.namespace_user),
            joinedload(RepositoryBuild.trigger),
            joinedload(RepositoryBuild.pull_robot),
        )
        .where(RepositoryBuild.uuid == build_uuid)
    )


def latest_build(session: Session, repository: Repository) -> RepositoryBuild | None:
    """The repository's most recently started build."""
    return session.scalar(
        select(RepositoryBuild)
        .where(RepositoryBuild.repository_id == repository.id)
        .order_by(RepositoryBuild.started.desc(), RepositoryBuild.id.desc())
        .limit(1)
    )


def badge_status(build: RepositoryBuild | None) -> str:
    """Quay's badge states: any phase but complete, error or cancelled reads as building."""
    if build is None:
        return "none"
    return {COMPLETE: "ready", ERROR: "failed", CANCELLED: "cancelled"}.get(build.phase, "building")


def list_builds(
    session: Session,
    repository: Repository,
    *,
    limit: int,
    since: dt.datetime | None = None,
    trigger: BuildTrigger | None = None,
) -> list[RepositoryBuild]:
    query = (
        select(RepositoryBuild)
        .options(
            joinedload(RepositoryBuild.repository).joinedload(Repository.namespace_user),
            joinedload(RepositoryBuild.trigger),
            joinedload(RepositoryBuild.pull_robot),
        )
        .where(RepositoryBuild.repository_id == repository.id)
        .order_by(RepositoryBuild.started.desc(), RepositoryBuild.id.desc())
        .limit(max(limit, 0))
    )
    if since is not None:
        query = query.where(RepositoryBuild.started >= since)
    if trigger is not None:
        query = query.where(RepositoryBuild.trigger_id == trigger.id)
    return list(session.scalars(query).unique())


def effective_phases(session: Session, builds: list[RepositoryBuild]) -> dict[int, str]:
    """Stored phases, with `internalerror` shown as `expired` once no retry is left."""
    failed = [b for b in builds if b.phase == INTERNAL_ERROR]
    phases = {b.id: b.phase for b in builds}
    if not failed:
        return phases
    queue_ids = [b.queue_id for b in failed if b.queue_id is not None]
    retries = dict(
        session.execute(
            select(QueueItem.id, QueueItem.retries_remaining).where(QueueItem.id.in_(queue_ids))
        ).all()
    )
    for build in failed:
        if retries.get(build.queue_id, 0) <= 0:
            phases[build.id] = EXPIRED
    return phases


# --- phases, cancel and outcome --------------------------------------------------------------


def set_phase(
    session: Session,
    build_id: int,
    phase: str,
    data: dict[str, Any] | None = None,
    *,
    settings: Settings | None = None,
) -> bool:
    """Move a build to `phase` unless it already ended (a cancel always wins); logs the phase.

    With `settings`, the phases that are notification events (start, success, failure) raise
    them in the same transaction.
    """
    values: dict[str, Any] = {"phase": phase}
    if phase in TERMINAL_PHASES:
        values["completed"] = utcnow()
    result = session.execute(
        update(RepositoryBuild)
        .where(RepositoryBuild.id == build_id, RepositoryBuild.phase.not_in(TERMINAL_PHASES))
        .values(**values)
    )
    if result.rowcount != 1:
        session.rollback()
        return False
    append_log(session, build_id, phase, "phase", data)
    if settings is not None and phase in _PHASE_EVENTS:
        notify_build(session, settings, build_id, _PHASE_EVENTS[phase])
    session.commit()
    return True


_PHASE_EVENTS = {
    BUILDING: events.BUILD_START,
    COMPLETE: events.BUILD_SUCCESS,
    ERROR: events.BUILD_FAILURE,
}


def _last_error(session: Session, build_id: int) -> str | None:
    return session.scalar(
        select(BuildLogEntry.message)
        .where(BuildLogEntry.build_id == build_id, BuildLogEntry.type == "error")
        .order_by(BuildLogEntry.id.desc())
        .limit(1)
    )


def notify_build(session: Session, settings: Settings, build_id: int, event: str) -> None:
    """Raise a build event with Quay's data for it (the caller commits)."""
    build = session.get(RepositoryBuild, build_id)
    if build is None:
        return
    config = job_config(build)
    extra: dict[str, Any] = {
        "build_id": build.uuid,
        "build_name": build.display_name,
        "docker_tags": config.get("docker_tags") or [],
        "trigger_id": build.trigger.uuid if build.trigger else None,
        "trigger_kind": build.trigger.service if build.trigger else None,
        "trigger_metadata": config.get("trigger_metadata") or {},
    }
    if event == events.BUILD_FAILURE:
        extra["error_message"] = _last_error(session, build_id) or "An internal error occurred"
    repo_notifications.spawn_for_repository(
        session, settings, build.repository, event, extra, subpage=f"/build/{build.uuid}"
    )


def requeue_phase(session: Session, build_id: int) -> bool:
    """An internal error with retries left: the build runs again from `build-scheduled`."""
    result = session.execute(
        update(RepositoryBuild)
        .where(
            RepositoryBuild.id == build_id,
            RepositoryBuild.phase.not_in({COMPLETE, ERROR, CANCELLED}),
        )
        .values(phase=BUILD_SCHEDULED, completed=None)
    )
    if result.rowcount != 1:
        session.rollback()
        return False
    append_log(session, build_id, BUILD_SCHEDULED, "phase")
    session.commit()
    return True


def cancel_build(
    session: Session,
    settings: Settings,
    build: RepositoryBuild,
    *,
    auth: AuthContext,
    ip: str | None,
) -> bool:
    """Cancel a build that has not reached `pushing`; the worker notices and stops it."""
    result = session.execute(
        update(RepositoryBuild)
        .where(RepositoryBuild.id == build.id, RepositoryBuild.phase.in_(CANCELLABLE_PHASES))
        .values(phase=CANCELLED, completed=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        return False
    if build.queue_id is not None:
        session.execute(QueueItem.__table__.delete().where(QueueItem.id == build.queue_id))
    append_log(session, build.id, CANCELLED, "phase")
    notify_build(session, settings, build.id, events.BUILD_CANCELLED)
    log_action(
        session,
        "cancel_build",
        namespace=build.repository.namespace_user,
        auth=auth,
        repository=build.repository,
        ip=ip,
        metadata={"build_uuid": build.uuid},
    )
    session.commit()
    return True


def expire_lost_builds(session: Session, settings: Settings) -> int:
    """Running builds whose worker vanished with no retry left end as internal errors."""
    now = utcnow()
    lost = session.scalars(
        select(RepositoryBuild.id)
        .outerjoin(QueueItem, QueueItem.id == RepositoryBuild.queue_id)
        .where(
            RepositoryBuild.phase.not_in(TERMINAL_PHASES | {WAITING}),
            or_(
                QueueItem.id.is_(None),
                and_(
                    QueueItem.retries_remaining <= 0,
                    QueueItem.available.is_(False),
                    QueueItem.processing_expires < now,
                ),
            ),
        )
    ).all()
    for build_id in lost:
        if set_phase(session, build_id, INTERNAL_ERROR):
            notify_build(session, settings, build_id, events.BUILD_FAILURE)
            session.execute(
                QueueItem.__table__.delete().where(
                    QueueItem.id
                    == select(RepositoryBuild.queue_id)
                    .where(RepositoryBuild.id == build_id)
                    .scalar_subquery()
                )
            )
            session.commit()
            record_trigger_outcome(session, settings, build_id)
    return len(lost)


def current_phase(session: Session, build_id: int) -> str | None:
    return session.scalar(select(RepositoryBuild.phase).where(RepositoryBuild.id == build_id))


def record_trigger_outcome(session: Session, settings: Settings, build_id: int) -> None:
    """Update the trigger's failure counters after a build ended; disable it past the limits."""
    build = session.get(RepositoryBuild, build_id)
    if build is None or build.trigger_id is None or build.phase not in TERMINAL_PHASES:
        return
    trigger = session.get(BuildTrigger, build.trigger_id)
    if trigger is None:
        return
    if build.phase == COMPLETE:
        trigger.successive_failure_count = 0
        trigger.successive_internal_error_count = 0
    elif build.phase == ERROR:
        trigger.successive_failure_count += 1
        trigger.successive_internal_error_count = 0
    elif build.phase == INTERNAL_ERROR:
        trigger.successive_internal_error_count += 1
    reason = None
    if trigger.successive_failure_count >= settings.SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD:
        reason = "successive_build_failures"
    elif (
        trigger.successive_internal_error_count
        >= settings.SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD
    ):
        reason = "successive_build_internal_errors"
    if reason is not None and trigger.enabled:
        trigger.enabled = False
        trigger.disabled_reason = reason
        trigger.disabled_datetime = utcnow()
    session.commit()


# --- the build log ---------------------------------------------------------------------------


def log_timestamp() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")


def append_log(
    session: Session,
    build_id: int,
    message: str,
    entry_type: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Add one log entry in the caller's transaction."""
    payload = {"datetime": log_timestamp(), **(data or {})}
    session.add(
        BuildLogEntry(
            build_id=build_id, message=message, type=entry_type, data_json=json.dumps(payload)
        )
    )


def read_logs(session: Session, build_id: int, start: int) -> tuple[int, list[dict[str, Any]]]:
    """The total number of entries and the entries from position `start` on."""
    total = session.scalar(
        select(func.count()).select_from(BuildLogEntry).where(BuildLogEntry.build_id == build_id)
    )
    total = total or 0
    start = max(start, 0)
    # Bounded by the count taken first, so `total` stays the next `start` to ask for.
    rows = session.scalars(
        select(BuildLogEntry)
        .where(BuildLogEntry.build_id == build_id)
        .order_by(BuildLogEntry.id)
        .offset(start)
        .limit(max(total - start, 0))
    ).all()
    entries = []
    for row in rows:
        entry: dict[str, Any] = {"message": row.message}
        if row.type:
            entry["type"] = row.type
        entry["data"] = json.loads(row.data_json or "{}")
        entries.append(entry)
    return total, entries


def note_waiting_builds(session: Session, message: str) -> int:
    """Tell every waiting build, once, why it is not starting; returns how many were told."""
    told = select(BuildLogEntry.build_id).where(BuildLogEntry.message == message)
    waiting = session.scalars(
        select(RepositoryBuild.id).where(
            RepositoryBuild.phase == WAITING, RepositoryBuild.id.not_in(told)
        )
    ).all()
    for build_id in waiting:
        append_log(session, build_id, message)
    session.commit()
    return len(waiting)
