"""Repository notifications: validating and keeping them, and raising events into the queue.

Raising an event is one indexed query plus one queue row per matching notification, in the
caller's transaction: a push or build that rolls back raises nothing, and nothing slow
happens on the caller's path. The notification worker delivers from the queue.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.base import begin_write
from cargohold.db.models.accounts import Team, User
from cargohold.db.models.notifications import (
    RepositoryAuthorizedEmail,
    RepositoryNotification,
    TagNotificationSent,
)
from cargohold.db.models.registry import Repository, Tag
from cargohold.domain import notification_events as events
from cargohold.domain import queue
from cargohold.domain.audit import log_repository_action
from cargohold.domain.email import OutgoingEmail, queue_email
from cargohold.domain.errors import Invalid
from cargohold.domain.json_template import JsonTemplate, JsonTemplateError

NOTIFICATION_QUEUE = "notification"
# A notification that failed this many deliveries in a row is skipped until reset (Quay's rule).
MAX_FAILURES = 3
QUEUE_RETRIES = MAX_FAILURES
MAX_CONFIG_BYTES = 16 * 1024
TARGET_KINDS = ("user", "org", "team")


class NotificationError(Invalid):
    """A request Quay answers with 400 invalid_request; the message is safe to show."""


# --- webhook targets -------------------------------------------------------------------------


def _server_host(settings: Settings) -> str:
    host = settings.SERVER_HOSTNAME.strip().lower()
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _own_addresses(own: str) -> set[str]:
    """The addresses the server's own name stands for (none when it does not resolve)."""
    literal = outbound.parse_address(own)
    if literal is not None:
        return {str(literal)}
    try:
        infos = socket.getaddrinfo(own, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {str(outbound.parse_address(str(info[4][0]))) for info in infos}


def refused_host(settings: Settings, host: str, addresses: list[str]) -> bool:
    """Quay's webhook blacklist, always applied: localhost, 127.0.0.1 and the server itself.

    `host` is compared by name and by the address it spells; `addresses` are the ones it
    resolved to, so no allow-listed range or DNS answer can lead back to these.
    """
    name = host.strip().lower().strip("[]").rstrip(".")
    own = _server_host(settings)
    blocked_names = {"localhost", "127.0.0.1", own}
    blocked_addresses = {"127.0.0.1", "::1", *_own_addresses(own)}
    if name in blocked_names or name.endswith(".localhost"):
        return True
    spelled = outbound.parse_address(name)
    if spelled is not None and str(spelled) in blocked_addresses:
        return True
    return any(str(outbound.parse_address(address)) in blocked_addresses for address in addresses)


def check_target_url(settings: Settings, url: str, invalid: str) -> None:
    """A webhook or Slack URL: http(s), passing the outbound guard and the blacklist."""
    try:
        target = outbound.check_url(settings, url)
    except outbound.UnresolvedHost:
        # Checked again at delivery, when the name may have an address.
        host = urlsplit(url.strip()).hostname or ""
        target = outbound.Target("http", host, None, ())
    except outbound.OutboundRefused as exc:
        raise NotificationError(invalid) from exc
    if refused_host(settings, target.host, list(target.addresses)):
        raise NotificationError(invalid)


# --- validation ------------------------------------------------------------------------------


@dataclass
class NotificationRequest:
    event: str
    method: str
    config: dict[str, Any]
    event_config: dict[str, Any]
    title: str | None


def _validate_event(event: str, event_config: dict[str, Any]) -> None:
    if event not in events.EVENTS:
        raise NotificationError(f"Unknown event: {event}")
    if event == events.IMAGE_EXPIRY:
        days = event_config.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 3650:
            raise NotificationError("The number of days must be a whole number from 1 to 3650")
    ref_regex = event_config.get("ref-regex")
    if event in events.BUILD_EVENTS and not isinstance(ref_regex, str | None):
        raise NotificationError("ref-regex must be a string")


def _string(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    return value.strip() if isinstance(value, str) else ""


def _validate_webhook(settings: Settings, config: dict[str, Any]) -> None:
    url = _string(config, "url")
    if not url:
        raise NotificationError("Missing webhook URL")
    check_target_url(settings, url, "Invalid webhook URL")
    template = config.get("template")
    if template not in (None, ""):
        if not isinstance(template, str):
            raise NotificationError("Could not parse template: the template must be a string")
        try:
            JsonTemplate(template)
        except JsonTemplateError as exc:
            raise NotificationError(str(exc)) from exc


def _validate_slack(settings: Settings, config: dict[str, Any]) -> None:
    url = _string(config, "url")
    if not url:
        raise NotificationError("Missing Slack Callback URL")
    check_target_url(settings, url, "Invalid Slack Callback URL")


def _validate_email(session: Session, repository: Repository, config: dict[str, Any]) -> None:
    address = _string(config, "email")
    if not address:
        raise NotificationError("Missing e-mail address")
    record = find_authorized_email(session, repository, address)
    if record is None or not record.confirmed:
        raise NotificationError(
            "The specified e-mail address is not authorized to receive notifications for this "
            "repository"
        )


def _validate_target(session: Session, repository: Repository, config: dict[str, Any]) -> None:
    target = config.get("target")
    if not isinstance(target, dict) or target.get("kind") not in TARGET_KINDS:
        raise NotificationError("Missing target")
    name = target.get("name")
    if not isinstance(name, str) or not name:
        raise NotificationError("Missing target")
    namespace = repository.namespace_user
    kind = target["kind"]
    if kind == "user":
        if target_user(session, name) is None:
            raise NotificationError(f"Unknown user {name}")
    elif kind == "org":
        if not namespace.organization or name != namespace.username:
            raise NotificationError("Organization name must match repository namespace")
    elif target_team(session, namespace, name) is None:
        raise NotificationError(f"Unknown team {name}")


def target_user(session: Session, name: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.username == name,
            User.organization.is_(False),
            User.robot.is_(False),
            User.deleted.is_(False),
        )
    )


def target_team(session: Session, namespace: User, name: str) -> Team | None:
    if not namespace.organization:
        return None
    return session.scalar(
        select(Team).where(Team.organization_id == namespace.id, Team.name == name)
    )


def validate(
    session: Session, settings: Settings, repository: Repository, request: NotificationRequest
) -> None:
    if len(json.dumps(request.config)) + len(json.dumps(request.event_config)) > MAX_CONFIG_BYTES:
        raise NotificationError("The notification configuration is too large")
    _validate_event(request.event, request.event_config)
    if request.method == "webhook":
        _validate_webhook(settings, request.config)
    elif request.method == "slack":
        _validate_slack(settings, request.config)
    elif request.method == "email":
        _validate_email(session, repository, request.config)
    elif request.method == "quay_notification":
        _validate_target(session, repository, request.config)
    else:
        raise NotificationError(f"Unknown notification method: {request.method}")


# --- keeping notifications -------------------------------------------------------------------


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def config_of(notification: RepositoryNotification) -> dict[str, Any]:
    return _loads(notification.config_json)


def event_config_of(notification: RepositoryNotification) -> dict[str, Any]:
    return _loads(notification.event_config_json)


def view(notification: RepositoryNotification) -> dict[str, Any]:
    return {
        "uuid": notification.uuid,
        "title": notification.title,
        "event": notification.event,
        "method": notification.method,
        "config": config_of(notification),
        "event_config": event_config_of(notification),
        "number_of_failures": notification.number_of_failures,
    }


def _audit(
    session: Session,
    kind: str,
    repository: Repository,
    notification: RepositoryNotification,
    auth: AuthContext,
    ip: str | None,
) -> None:
    entry = {
        "repo": repository.name,
        "namespace": repository.namespace_user.username,
        "notification_id": notification.uuid,
        "event": notification.event,
        "method": notification.method,
    }
    log_repository_action(session, kind, repository, auth=auth, ip=ip, metadata=entry)


def create(
    session: Session,
    settings: Settings,
    repository: Repository,
    request: NotificationRequest,
    *,
    auth: AuthContext,
    ip: str | None,
) -> RepositoryNotification:
    begin_write(session)
    validate(session, settings, repository, request)
    notification = RepositoryNotification(
        repository_id=repository.id,
        event=request.event,
        method=request.method,
        title=request.title,
        config_json=json.dumps(request.config),
        event_config_json=json.dumps(request.event_config),
        number_of_failures=0,
    )
    session.add(notification)
    session.flush()
    _audit(session, "add_repo_notification", repository, notification, auth, ip)
    return notification


def list_for(session: Session, repository: Repository) -> list[RepositoryNotification]:
    return list(
        session.scalars(
            select(RepositoryNotification)
            .where(RepositoryNotification.repository_id == repository.id)
            .order_by(RepositoryNotification.id)
        )
    )


def find(
    session: Session, repository: Repository, notification_uuid: str
) -> RepositoryNotification | None:
    """Only the repository's own notifications: a uuid never reveals another repository's."""
    return session.scalar(
        select(RepositoryNotification).where(
            RepositoryNotification.repository_id == repository.id,
            RepositoryNotification.uuid == notification_uuid,
        )
    )


def not_found_message(repository: Repository, notification_uuid: str) -> str:
    return (
        f"No repository notification found for: {repository.namespace_user.username}, "
        f"{repository.name}, {notification_uuid}"
    )


def _find_for_change(
    session: Session, repository: Repository, notification_uuid: str
) -> RepositoryNotification:
    """The notification a change names, read under the write lock the change needs."""
    begin_write(session)
    notification = find(session, repository, notification_uuid)
    if notification is None:
        raise NotificationError(not_found_message(repository, notification_uuid))
    return notification


def delete_notification(
    session: Session,
    repository: Repository,
    notification_uuid: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    notification = _find_for_change(session, repository, notification_uuid)
    _audit(session, "delete_repo_notification", repository, notification, auth, ip)
    session.execute(
        delete(TagNotificationSent).where(TagNotificationSent.notification_id == notification.id)
    )
    session.delete(notification)


def reset_failures(
    session: Session,
    repository: Repository,
    notification_uuid: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Failures back to 0, so that a disabled notification is delivered again."""
    notification = _find_for_change(session, repository, notification_uuid)
    notification.number_of_failures = 0
    _audit(session, "reset_repo_notification", repository, notification, auth, ip)


def queue_test(
    session: Session, settings: Settings, repository: Repository, notification_uuid: str
) -> None:
    """One delivery of the event's sample data, through the same queue as real events."""
    notification = _find_for_change(session, repository, notification_uuid)
    data = events.sample_data(
        settings,
        notification.event,
        repository.namespace_user.username,
        repository.name,
        event_config_of(notification),
    )
    _enqueue(session, notification, data, {})


# --- raising events --------------------------------------------------------------------------


def performer_data(user: User | None, auth: AuthContext | None = None) -> dict[str, Any]:
    """Who caused the event, as Quay hands it to the methods."""
    data: dict[str, Any] = {}
    token = auth.oauth_token if auth is not None else None
    if token is not None:
        data["oauth_token_id"] = token.id
        if token.application is not None:
            data["oauth_token_application_id"] = token.application.client_id
            data["oauth_token_application"] = token.application.name
    if user is not None:
        data["entity_id"] = user.id
        data["entity_name"] = user.username
    return data


def _enqueue(
    session: Session,
    notification: RepositoryNotification,
    event_data: dict[str, Any],
    performer: dict[str, Any],
) -> None:
    queue.enqueue(
        session,
        NOTIFICATION_QUEUE,
        {
            "notification_uuid": notification.uuid,
            "event_data": event_data,
            "performer_data": performer,
        },
        retries=QUEUE_RETRIES,
    )


def spawn(
    session: Session,
    settings: Settings,
    repository_id: int,
    namespace: str,
    name: str,
    event: str,
    extra: dict[str, Any],
    *,
    performer: dict[str, Any] | None = None,
    subpage: str | None = None,
) -> int:
    """Queue one delivery per notification of the repository for `event`; the caller commits."""
    notifications = list(
        session.scalars(
            select(RepositoryNotification).where(
                RepositoryNotification.repository_id == repository_id,
                RepositoryNotification.event == event,
                RepositoryNotification.number_of_failures < MAX_FAILURES,
            )
        )
    )
    if not notifications:
        return 0
    data = events.repository_event_data(settings, namespace, name, extra, subpage=subpage)
    for notification in notifications:
        _enqueue(session, notification, data, performer or {})
    return len(notifications)


def spawn_push(
    session: Session,
    settings: Settings,
    repository_id: int,
    namespace: str,
    name: str,
    tag: str,
    pusher: str | None,
) -> int:
    """`repo_push` for one pushed tag; the pusher is looked up only when someone listens."""
    if not _listening(session, repository_id, events.REPO_PUSH):
        return 0
    user = (
        session.scalar(select(User).where(User.username == pusher)) if pusher is not None else None
    )
    return spawn(
        session,
        settings,
        repository_id,
        namespace,
        name,
        events.REPO_PUSH,
        {"updated_tags": [tag]},
        performer=performer_data(user),
    )


@cache
def _listening_statement() -> Select:
    # Built once: every tag push asks.
    return (
        select(RepositoryNotification.id)
        .where(
            RepositoryNotification.repository_id == bindparam("repository_id"),
            RepositoryNotification.event == bindparam("event"),
        )
        .limit(1)
    )


def _listening(session: Session, repository_id: int, event: str) -> bool:
    found = session.scalar(_listening_statement(), {"repository_id": repository_id, "event": event})
    return found is not None


def spawn_for_repository(
    session: Session,
    settings: Settings,
    repository: Repository,
    event: str,
    extra: dict[str, Any],
    **options: Any,
) -> int:
    return spawn(
        session,
        settings,
        repository.id,
        repository.namespace_user.username,
        repository.name,
        event,
        extra,
        **options,
    )


# --- delivery bookkeeping --------------------------------------------------------------------


def find_by_uuid(session: Session, notification_uuid: str) -> RepositoryNotification | None:
    return session.scalar(
        select(RepositoryNotification).where(RepositoryNotification.uuid == notification_uuid)
    )


def record_success(session: Session, notification_id: int) -> None:
    session.execute(
        update(RepositoryNotification)
        .where(RepositoryNotification.id == notification_id)
        .values(number_of_failures=0)
    )


def record_failure(session: Session, notification_id: int) -> None:
    session.execute(
        update(RepositoryNotification)
        .where(RepositoryNotification.id == notification_id)
        .values(number_of_failures=RepositoryNotification.number_of_failures + 1)
    )


# --- authorized e-mail addresses -------------------------------------------------------------


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def find_authorized_email(
    session: Session, repository: Repository, address: str
) -> RepositoryAuthorizedEmail | None:
    return session.scalar(
        select(RepositoryAuthorizedEmail).where(
            RepositoryAuthorizedEmail.repository_id == repository.id,
            RepositoryAuthorizedEmail.email == address.strip(),
        )
    )


def authorized_email_view(
    repository: Repository, record: RepositoryAuthorizedEmail
) -> dict[str, Any]:
    return {
        "email": record.email,
        "repository": repository.name,
        "namespace": repository.namespace_user.username,
        "confirmed": record.confirmed,
    }


def request_email_authorization(
    session: Session, settings: Settings, repository: Repository, address: str
) -> RepositoryAuthorizedEmail:
    """Mail a confirmation link to `address`, unless it is confirmed already."""
    begin_write(session)
    record = find_authorized_email(session, repository, address)
    if record is not None and record.confirmed:
        return record
    if record is None:
        record = RepositoryAuthorizedEmail(
            repository_id=repository.id, email=address.strip(), confirmed=False
        )
        session.add(record)
    code = secrets.token_urlsafe(32)
    record.code_hash = _code_hash(code)
    full_name = f"{repository.namespace_user.username}/{repository.name}"
    queue_email(
        session,
        settings,
        OutgoingEmail(
            recipient=record.email,
            subject="Verify e-mail to receive repository notifications",
            text=(
                f"A request has been made to send notifications for repository {full_name} "
                f"to this address.\n\nTo confirm, open this link:\n"
                f"{settings.server_url}/authrepoemail?code={code}\n"
            ),
        ),
    )
    return record


def confirm_email_authorization(session: Session, code: str) -> RepositoryAuthorizedEmail | None:
    begin_write(session)
    record = session.scalar(
        select(RepositoryAuthorizedEmail).where(
            RepositoryAuthorizedEmail.code_hash == _code_hash(code)
        )
    )
    if record is None:
        return None
    record.confirmed = True
    record.code_hash = None
    return record


# --- tags about to expire --------------------------------------------------------------------


def _expiring_tags(
    session: Session, notification: RepositoryNotification, now_ms: int, days: int
) -> list[Tag]:
    announced = select(TagNotificationSent.tag_id).where(
        TagNotificationSent.notification_id == notification.id
    )
    return list(
        session.scalars(
            select(Tag)
            .where(
                Tag.repository_id == notification.repository_id,
                Tag.hidden.is_(False),
                Tag.lifetime_end_ms > now_ms,
                Tag.lifetime_end_ms <= now_ms + days * 86_400_000,
                Tag.id.not_in(announced),
            )
            .order_by(Tag.name)
        )
    )


def _announce_expiry(
    session: Session, settings: Settings, notification: RepositoryNotification, now_ms: int
) -> bool:
    days = event_config_of(notification).get("days")
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        return False
    if not _expiring_tags(session, notification, now_ms, days):
        return False
    # Only now take the write lock, and look again under it.
    begin_write(session)
    expiring = _expiring_tags(session, notification, now_ms, days)
    if not expiring:
        session.rollback()
        return False
    for tag in expiring:
        session.add(TagNotificationSent(notification_id=notification.id, tag_id=tag.id))
    repository = notification.repository
    data = events.repository_event_data(
        settings,
        repository.namespace_user.username,
        repository.name,
        {"tags": [tag.name for tag in expiring], "expiring_in": f"{days} days"},
    )
    _enqueue(session, notification, data, {})
    try:
        session.commit()
    except IntegrityError:
        # Another process announced these tags first.
        session.rollback()
        return False
    return True


def scan_expiring_tags(session: Session, settings: Settings, now_ms: int) -> int:
    """Queue one `repo_image_expiry` delivery per notification with newly expiring tags.

    Each tag is announced once per notification; returns how many deliveries were queued.
    """
    notification_ids = list(
        session.scalars(
            select(RepositoryNotification.id)
            .join(Repository, Repository.id == RepositoryNotification.repository_id)
            .where(
                RepositoryNotification.event == events.IMAGE_EXPIRY,
                RepositoryNotification.number_of_failures < MAX_FAILURES,
                Repository.deleted.is_(False),
            )
        )
    )
    session.rollback()
    queued = 0
    for notification_id in notification_ids:
        notification = session.get(RepositoryNotification, notification_id)
        if notification is not None and _announce_expiry(session, settings, notification, now_ms):
            queued += 1
    return queued
