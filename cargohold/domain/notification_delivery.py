"""Delivering one queued repository notification through its method.

Webhook and Slack posts go through the outbound guard (the address it checked is the one
connected to, redirects are checked too) and Quay's blacklist of localhost, 127.0.0.1 and
the server itself. E-mail goes through the e-mail queue; in-app notifications are rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.config import Settings
from cargohold.db.base import begin_write
from cargohold.db.models.accounts import TeamMember, User
from cargohold.db.models.registry import Repository
from cargohold.domain import notification_events as events
from cargohold.domain import notifications as user_notifications
from cargohold.domain import repo_notifications as rules
from cargohold.domain.email import OutgoingEmail, queue_email
from cargohold.domain.json_template import JsonTemplate, JsonTemplateError

log = logging.getLogger(__name__)

SLACK_COLORS = {"success": "good", "error": "danger", "warning": "warning"}


class DeliveryFailed(Exception):
    """The method could not deliver; the item is retried and the failure counted."""


@dataclass
class Delivery:
    """A claimed queue item joined with its notification, read before any network call."""

    notification_id: int
    repository_id: int
    event: str
    method: str
    config: dict[str, Any]
    event_config: dict[str, Any]
    event_data: dict[str, Any]
    failures: int


def load(session: Session, body: dict[str, Any]) -> Delivery | None:
    """The delivery a queue item asks for; None when its notification is gone or disabled."""
    notification = rules.find_by_uuid(session, str(body.get("notification_uuid", "")))
    if notification is None or notification.number_of_failures >= rules.MAX_FAILURES:
        return None
    return Delivery(
        notification_id=notification.id,
        repository_id=notification.repository_id,
        event=notification.event,
        method=notification.method,
        config=rules.config_of(notification),
        event_config=rules.event_config_of(notification),
        event_data=body.get("event_data") or {},
        failures=notification.number_of_failures,
    )


def perform(session: Session, settings: Settings, delivery: Delivery) -> None:
    """Deliver; raises DeliveryFailed. Database work commits on `session`."""
    if delivery.method == "webhook":
        _webhook(settings, delivery)
    elif delivery.method == "slack":
        _slack(settings, delivery)
    elif delivery.method == "email":
        _email(session, settings, delivery)
    elif delivery.method == "quay_notification":
        _in_app(session, settings, delivery)
    else:
        raise DeliveryFailed(f"Unknown notification method: {delivery.method}")


def _post_json(settings: Settings, url: str, payload: Any) -> None:
    try:
        status = outbound.post_for_status(
            settings,
            url,
            refuse=lambda host, addresses: rules.refused_host(settings, host, addresses),
            client_options={
                "timeout": settings.NOTIFICATION_SEND_TIMEOUT,
                "follow_redirects": True,
                "max_redirects": 5,
            },
            content=json.dumps(payload).encode(),
            headers={"Content-type": "application/json"},
        )
    except outbound.OutboundRefused as exc:
        raise DeliveryFailed(f"Refused target: {exc}") from exc
    except outbound.RequestFailed as exc:
        raise DeliveryFailed(str(exc)) from exc
    if status // 100 != 2:
        raise DeliveryFailed(f"{status} response from the notification target")


def _webhook(settings: Settings, delivery: Delivery) -> None:
    url = str(delivery.config.get("url") or "").strip()
    if not url:
        raise DeliveryFailed("Missing webhook URL")
    payload: Any = delivery.event_data
    template = delivery.config.get("template")
    if isinstance(template, str) and template:
        try:
            payload = JsonTemplate(template).apply(delivery.event_data)
        except JsonTemplateError as exc:
            raise DeliveryFailed(str(exc)) from exc
    _post_json(settings, url, payload)


def _slack_text(delivery: Delivery) -> str:
    data = delivery.event_data
    lines = [f"<{data.get('homepage', '')}|{data.get('repository', '')}>"]
    for key in ("updated_tags", "docker_tags", "tags"):
        if data.get(key):
            lines.append(
                f"*{key.replace('_', ' ').capitalize()}*: {', '.join(map(str, data[key]))}"
            )
    for key in ("message", "error_message", "expiring_in"):
        if data.get(key):
            lines.append(f"*{key.replace('_', ' ').capitalize()}*: {data[key]}")
    return "\n".join(lines)


def _slack(settings: Settings, delivery: Delivery) -> None:
    url = str(delivery.config.get("url") or "").strip()
    if not url:
        raise DeliveryFailed("Missing Slack Callback URL")
    summary = events.summary(delivery.event, delivery.event_data)
    payload = {
        "text": summary,
        "username": "quayiobot",
        "attachments": [
            {
                "fallback": summary,
                "text": _slack_text(delivery),
                "color": SLACK_COLORS.get(events.level(delivery.event), "#ffffff"),
                "mrkdwn_in": ["text"],
            }
        ],
    }
    _post_json(settings, url, payload)


def _email_text(delivery: Delivery) -> str:
    data = delivery.event_data
    lines = [events.summary(delivery.event, data), ""]
    for key in (
        "updated_tags",
        "docker_tags",
        "tags",
        "message",
        "error_message",
        "expiring_in",
    ):
        value = data.get(key)
        if value:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            lines.append(f"{key.replace('_', ' ').capitalize()}: {shown}")
    lines += ["", f"Repository: {data.get('homepage', '')}"]
    return "\n".join(lines) + "\n"


def _email(session: Session, settings: Settings, delivery: Delivery) -> None:
    address = str(delivery.config.get("email") or "").strip()
    if not address:
        raise DeliveryFailed("Missing e-mail address")
    repository = session.get(Repository, delivery.repository_id)
    if repository is None:
        return
    record = rules.find_authorized_email(session, repository, address)
    if record is None or not record.confirmed:
        raise DeliveryFailed("The e-mail address is no longer authorized")
    begin_write(session)
    queue_email(
        session,
        settings,
        OutgoingEmail(
            recipient=address,
            subject=events.summary(delivery.event, delivery.event_data),
            text=_email_text(delivery),
        ),
    )
    session.commit()


def _in_app_targets(session: Session, repository: Repository, target: dict[str, Any]) -> list[User]:
    kind, name = target.get("kind"), str(target.get("name") or "")
    namespace = repository.namespace_user
    if kind == "user":
        user = rules.target_user(session, name)
        return [user] if user is not None else []
    if kind == "org":
        return [namespace] if namespace.organization and namespace.username == name else []
    if kind == "team":
        team = rules.target_team(session, namespace, name)
        if team is None:
            return []
        return list(
            session.scalars(
                select(User)
                .join(TeamMember, TeamMember.user_id == User.id)
                .where(TeamMember.team_id == team.id)
            )
        )
    return []


def _in_app(session: Session, settings: Settings, delivery: Delivery) -> None:
    repository = session.get(Repository, delivery.repository_id)
    if repository is None:
        return
    target = delivery.config.get("target")
    targets = _in_app_targets(session, repository, target if isinstance(target, dict) else {})
    if not targets:
        raise DeliveryFailed("The notification target no longer exists")
    begin_write(session)
    for user in targets:
        user_notifications.notify(session, settings, user, delivery.event, delivery.event_data)
    session.commit()


def finish(session: Session, delivery: Delivery, *, succeeded: bool) -> None:
    """Count a failure, or clear the count after a success (no write when it is already 0)."""
    if succeeded and delivery.failures == 0:
        return
    begin_write(session)
    if succeeded:
        rules.record_success(session, delivery.notification_id)
    else:
        rules.record_failure(session, delivery.notification_id)
    session.commit()
