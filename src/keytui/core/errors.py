"""The errors the service raises. Each carries a one-line message fit for a user.

Messages never contain a secret: the service only ever formats IDs, names and logins into them.
"""

import sys


class KeytuiError(Exception):
    """Base class: a refusal the user can read and act on."""

    exit_code = 1

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # which input it concerns, for a form that shows errors beside fields


class InvalidInput(KeytuiError):
    """The input itself is bad (a name too long, a date in the past); usage error, exit 2."""

    exit_code = 2


class ReasonRequired(InvalidInput):
    """The installation requires a reason for revoke, replace and delete, and none was given."""


class PermissionDenied(KeytuiError):
    """The acting user's role does not allow this."""


class ReadOnly(PermissionDenied):
    """The service was opened read-only (``--read-only``): it changes nothing."""


class UnknownUser(PermissionDenied):
    """The acting login is not a user of this database."""


class NotFound(KeytuiError):
    """No key, user or role by that name."""


class LimitReached(KeytuiError):
    """An installation limit (keys per user, keys disabled) refuses the call."""


class NotActive(KeytuiError):
    """The key is revoked or expired, so it cannot be revoked or replaced."""


class Conflict(KeytuiError):
    """The change would break an invariant (last admin, a role still in use)."""


class NotDelivered(KeytuiError):
    """A new secret could not be handed over (stdout closed, disk full): the change was
    rolled back."""


class DatabaseError(KeytuiError):
    """The database could not be opened or written; the message says which and why."""


class NoSuchDirectory(DatabaseError):
    """An explicit database path in a directory that does not exist: a typo, most likely, so
    nothing is created; usage error, exit 2."""

    exit_code = 2


class BadDatabaseURL(DatabaseError):
    """``--db`` is not a path or URL keytui can use; nothing was created. Bad input, exit 2."""

    exit_code = 2


class MissingDriver(DatabaseError):
    """The URL needs a driver this installation lacks; the message names the extra to install."""

    exit_code = 2


def is_sqlalchemy_error(exc: BaseException) -> bool:
    """Did SQLAlchemy raise ``exc``? Asked without importing it: if it raised, it is loaded
    (and the app starts before it is)."""
    module = sys.modules.get("sqlalchemy.exc")
    return module is not None and isinstance(exc, module.SQLAlchemyError)
