"""API keys with roles, stored hashed (only the SHA-256 of a key ever reaches the database).

Roles and what they may do (``admin`` implies every role):

- ``submitter``: classify records, submit bulk jobs (agency systems).
- ``reviewer``: read and decide review items (people).
- ``admin``: everything, including managing models and keys.

Every valid key may read the taxonomy and the model list. A reviewer may *not* classify:
reviewer keys belong to people whose decisions are audited, and a reviewer who classified
would put items into the queue they then decide themselves; a reviewer who wants to see the
model's view of a text sees the suggestions on the item itself. Least privilege keeps each key
to one job.

Keys are 256-bit random tokens, so an unsalted SHA-256 is enough: there is no dictionary to
attack, and a deterministic hash lets the lookup use an index.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from service.db import ApiKey, utcnow
from service.errors import AuthError, Conflict, Forbidden, InvalidInput, NotFound

SUBMITTER, REVIEWER, ADMIN = "submitter", "reviewer", "admin"
ROLES = (SUBMITTER, REVIEWER, ADMIN)

CLASSIFY, REVIEW, READ, MANAGE = "classify", "review", "read", "manage"
PERMISSIONS: dict[str, frozenset[str]] = {
    SUBMITTER: frozenset({CLASSIFY, READ}),
    REVIEWER: frozenset({REVIEW, READ}),
    ADMIN: frozenset({CLASSIFY, REVIEW, READ, MANAGE}),
}
KEY_PREFIX = "iccs_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (recorded in audit entries) and its role."""

    name: str
    role: str

    def can(self, action: str) -> bool:
        """True when the role allows ``action`` (one of the permission names above)."""
        return action in PERMISSIONS.get(self.role, frozenset())

    def require(self, action: str) -> Principal:
        """Return self, or raise :class:`Forbidden` when the role does not allow ``action``."""
        if not self.can(action):
            raise Forbidden(
                f"The '{self.role}' role may not {action}.", role=self.role, action=action
            )
        return self


@dataclass(frozen=True)
class KeyInfo:
    """A stored key without its secret."""

    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_at is None


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key: what the database stores and looks up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new random key; the prefix makes leaked keys easy to recognise in secret scanners."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """Create, verify, revoke and list API keys over :class:`service.db.ApiKey`."""

    def __init__(
        self,
        sessions: sessionmaker[Any],
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        # Verified keys are trusted for ``cache_seconds`` without a database round trip (one
        # per request otherwise). Revoking through this store clears the cache at once; a key
        # revoked by another process stops working here within ``cache_seconds``.
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}

    def create(self, name: str, role: str) -> str:
        """Store a new key for ``name`` and return the key itself (shown once, never stored)."""
        if role not in ROLES:
            raise InvalidInput(f"Unknown role '{role}'; use one of {', '.join(ROLES)}.", role=role)
        if not _NAME_RE.match(name):
            raise InvalidInput(
                "A key name is 1-100 letters, digits or . _ @ - and starts with a letter or digit.",
                name=name[:100],
            )
        key = generate_key()
        with self.sessions() as session:
            # Names stay reserved after revocation: audit entries refer to keys by name.
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise Conflict(f"A key named '{name}' already exists (maybe revoked).", name=name)
            session.add(ApiKey(name=name, role=role, key_hash=hash_key(key)))
            try:
                session.commit()
            except IntegrityError as exc:  # a concurrent create with the same name
                raise Conflict(f"A key named '{name}' already exists.", name=name) from exc
        return key

    def verify(self, key: str | None) -> Principal:
        """The principal of an active key; :class:`AuthError` for a missing or unknown key."""
        if not key:
            raise AuthError("Missing API key: send 'Authorization: Bearer KEY'.")
        digest = hash_key(key)
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        with self.sessions() as session:
            row = session.execute(
                select(ApiKey.name, ApiKey.role).where(
                    ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            # Unknown keys are never cached, so the cache only ever holds keys that exist.
            self._verified.pop(digest, None)
            raise AuthError("Unknown or revoked API key.")
        principal = Principal(name=row.name, role=row.role)
        if self.cache_seconds > 0:
            self._verified[digest] = (principal, self.clock() + self.cache_seconds)
        return principal

    def revoke(self, name: str) -> None:
        """Revoke the active key called ``name``; :class:`NotFound` when there is none."""
        with self.sessions() as session:
            row = session.scalar(
                select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            )
            if row is None:
                raise NotFound(f"No active key named '{name}'.", name=name)
            row.revoked_at = utcnow()
            session.commit()
        self._verified.clear()

    def list(self) -> list[KeyInfo]:
        """Every key, active and revoked, oldest first."""
        with self.sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
            return [KeyInfo(r.name, r.role, r.created_at, r.revoked_at) for r in rows]
