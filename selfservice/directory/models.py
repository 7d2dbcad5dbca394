"""Tables of the builtin directory: accounts and groups kept in the portal's database."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from selfservice.dbtypes import UTCDateTime
from selfservice.extensions import db
from selfservice.timeutil import utcnow

group_members = Table(
    "directory_group_member",
    db.metadata,
    Column("group_id", ForeignKey("directory_group.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ForeignKey("directory_account.id", ondelete="CASCADE"), primary_key=True),
)


class DirectoryAccount(db.Model):
    __tablename__ = "directory_account"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    login: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    student_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    birth_month_year: Mapped[str | None] = mapped_column(String(6))
    parent_account_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    parent_pin: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    groups: Mapped[list[DirectoryGroup]] = relationship(
        secondary=group_members, back_populates="members", lazy="selectin"
    )


class DirectoryGroup(db.Model):
    __tablename__ = "directory_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)

    members: Mapped[list[DirectoryAccount]] = relationship(secondary=group_members, back_populates="groups")
