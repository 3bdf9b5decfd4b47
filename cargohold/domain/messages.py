"""Global messages: listed for everyone, posted and removed by superusers.

They live in the database so that every replica shows the same banners. Quay writes no
audit-log entry for them, and neither does cargohold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cargohold.db.models.messages import GlobalMessage


@dataclass(frozen=True)
class NewMessage:
    content: str
    media_type: str
    severity: str


def message_view(message: GlobalMessage) -> dict[str, Any]:
    return {
        "uuid": message.uuid,
        "content": message.content,
        "severity": message.severity,
        "media_type": message.media_type,
    }


def list_messages(db: Session) -> list[GlobalMessage]:
    return list(db.scalars(select(GlobalMessage).order_by(GlobalMessage.id)))


def create_message(db: Session, new: NewMessage) -> GlobalMessage:
    message = GlobalMessage(content=new.content, media_type=new.media_type, severity=new.severity)
    db.add(message)
    db.flush()
    return message


def delete_message(db: Session, message_uuid: str) -> None:
    """Deleting an unknown message is not an error (Quay answers 204 either way)."""
    db.execute(delete(GlobalMessage).where(GlobalMessage.uuid == message_uuid))
