"""Sessions (refresh tokens) and idempotency records of mutating phone requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Integer, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import Base


class RefreshToken(Base):
    """A login session; only the sha256 of the token is stored. Logout and deactivation revoke it. Each refresh
    makes a new row of the same family (`family_id`: the id of the login's first row)."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    family_id: Mapped[int] = mapped_column(BigInteger, index=True)


class IdempotencyKey(Base):
    """The first response to a mutating request with this key; a replay returns it and writes nothing."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
