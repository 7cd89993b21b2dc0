"""The public side's tables: citizens' reports (tracking code, secret token, rating), their contact details kept
apart from the case, and the Open311 API keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import Base


class PublicReport(Base):
    """A case filed by a citizen (web form or an Open311 client): how they follow and rate it.

    Only the sha256 of the secret token is stored; the tracking code is public (it is printed on receipts).
    """

    __tablename__ = "public_report"
    __table_args__ = (
        CheckConstraint("channel IN ('web', 'open311')", name="channel"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("tracking_code ~ '^[A-Z0-9]{10}$'", name="tracking_code_format"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(10), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10), server_default="web")
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("open311_key.id", ondelete="SET NULL"))
    """The Open311 client that posted it."""
    client_address: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    """Answers to the class's questions (Open311 `attribute[code]`)."""
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reopen_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseContact(Base):
    """A citizen's contact details, stored apart from the case: only centre roles read them, never public or Open311
    output; removed after the retention period (`purge_after`)."""

    __tablename__ = "case_contact"
    __table_args__ = (
        CheckConstraint("phone IS NOT NULL OR email IS NOT NULL", name="something"),
        Index("ix_case_contact_purge_after", "purge_after"),
        Index("ix_case_contact_phone", "phone"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(100))
    consent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    purge_after: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Open311Key(Base):
    """An Open311 client's api_key; only its sha256 is stored (the key is shown once, when it is made)."""

    __tablename__ = "open311_key"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(8))
    """The first characters of the key, to tell keys apart in lists."""
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
