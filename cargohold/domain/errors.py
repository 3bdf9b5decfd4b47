"""The kinds of refusal a domain rule can give.

Every domain exception derives from one of these kinds. The message is the wording Quay's
users see; the HTTP layers choose status and body shape from the kind alone, in one table each
(`api/errors.py` and `registry/errors.py`), so handlers never translate errors one by one.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused the request. `extra` carries fields some Quay bodies add (e.g. `reason`)."""

    def __init__(self, message: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(DomainError):
    """The request asks for something the rules do not allow (Quay's `invalid_request`)."""


class ModelError(DomainError):
    """Quay's data-model refusal: a 400 with a bare `{"message": ...}` body."""


class NotFound(DomainError):
    """The thing named does not exist, or the caller may not know that it does."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Conflict(DomainError):
    """The request collides with the current state (a taken name, an immutable tag)."""


class QuotaExceeded(DomainError):
    """Storing this would take a namespace past its hard quota."""


class Unavailable(DomainError):
    """Something the rule depends on (an upstream, a mail server) could not be reached."""
