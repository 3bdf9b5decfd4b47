"""Exponential back-off after failed logins, per account (Quay's invalid_login_attempts rule).

An account with n failed logins on record refuses every login, right or wrong, until
SCALE * (2**n - 1) / 2 seconds after the last failure (capped); a success clears the record.
The record lives on the account's row, so every replica enforces the same window.

Once an account has failures on record, each login attempt first claims the next failure slot
with a compare-and-set on the counter: of concurrent guesses against one account on different
replicas, only the one that wins the slot is checked, the others are refused at once. A wrong
guess leaves the claimed slot counted; a right one clears the record. (Within one process,
auth/credentials.py also runs the checks of one account one at a time.)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.base import begin_write, utcnow
from cargohold.db.models.accounts import User

# 2**63 seconds is beyond any cap; larger exponents only overflow.
_MAX_EXPONENT = 63
# Quay's words, which its clients show as they are.
THROTTLED_MESSAGE = "Too many login attempts. \nPlease reset your Quay password and try again."


class LoginThrottled(Exception):
    """The account is backing off; nothing was checked. Retry after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(THROTTLED_MESSAGE)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


@dataclass(frozen=True)
class BackoffPolicy:
    scale_s: float
    max_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> BackoffPolicy:
        return cls(
            settings.LOGIN_FAILURE_BACKOFF_SCALE_SEC, float(settings.LOGIN_FAILURE_BACKOFF_MAX_SEC)
        )

    @property
    def enabled(self) -> bool:
        return self.scale_s > 0 and self.max_s > 0

    def window_s(self, attempts: int) -> float:
        """How long after the last failure an account with `attempts` failures waits."""
        if attempts <= 0:
            return 0.0
        exponent = min(attempts, _MAX_EXPONENT)
        return min(self.scale_s * (2**exponent - 1) / 2, self.max_s)

    def remaining_s(
        self, attempts: int, last_failure: dt.datetime | None, now: dt.datetime
    ) -> float:
        if attempts <= 0 or last_failure is None:
            return 0.0
        retry_at = last_failure + dt.timedelta(seconds=self.window_s(attempts))
        return max((retry_at - now).total_seconds(), 0.0)


def _throttled(seconds: float) -> LoginThrottled:
    # Rounded up: a client that waits Retry-After seconds is not refused again.
    return LoginThrottled(max(math.ceil(seconds), 1))


def _write(session: Session, statement: Update) -> int:
    """Run one update in its own committed transaction; the rows it changed.

    The record must outlive a refused request, whose transaction is never committed. The
    caller's read transaction is closed first so that SQLite takes its write lock at once.
    """
    session.commit()
    begin_write(session)
    changed = session.execute(statement.execution_options(synchronize_session=False)).rowcount
    session.commit()
    return changed


def _record(session: Session, account_id: int) -> tuple[int, dt.datetime | None]:
    row = session.execute(
        select(User.invalid_login_attempts, User.last_invalid_login).where(User.id == account_id)
    ).one()
    return row[0], row[1]


def begin_attempt(session: Session, policy: BackoffPolicy, account: User) -> bool:
    """Admit one login attempt for `account` or raise LoginThrottled.

    Returns whether the attempt claimed a failure slot in advance, which only happens when the
    account has failures on record (see the module's docstring).
    """
    if not policy.enabled:
        return False
    # A fresh look at the record: a transaction that read earlier (SQLite keeps its snapshot)
    # would miss failures recorded since.
    session.commit()
    attempts, last_failure = _record(session, account.id)
    now = utcnow()
    wait = policy.remaining_s(attempts, last_failure, now)
    if wait > 0:
        raise _throttled(wait)
    if attempts == 0:
        return False
    claimed = _write(
        session,
        update(User)
        .where(User.id == account.id, User.invalid_login_attempts == attempts)
        .values(invalid_login_attempts=attempts + 1, last_invalid_login=now),
    )
    if claimed:
        return True
    # Another attempt got there first: it either claimed the slot or cleared the record.
    attempts, last_failure = _record(session, account.id)
    if attempts > 0:
        raise _throttled(policy.remaining_s(attempts, last_failure, now))
    return False


def record_failure(session: Session, policy: BackoffPolicy, account: User, claimed: bool) -> None:
    """Count a failed login (already counted when its slot was claimed)."""
    if not policy.enabled or claimed:
        return
    _write(
        session,
        update(User)
        .where(User.id == account.id)
        .values(
            invalid_login_attempts=User.invalid_login_attempts + 1, last_invalid_login=utcnow()
        ),
    )


def record_success(session: Session, policy: BackoffPolicy, account: User, claimed: bool) -> None:
    """Clear the failure record after a successful login (there is one only if the attempt
    claimed a slot)."""
    if not policy.enabled or not claimed:
        return
    _write(
        session,
        update(User)
        .where(User.id == account.id, User.invalid_login_attempts > 0)
        .values(invalid_login_attempts=0, last_invalid_login=None),
    )
