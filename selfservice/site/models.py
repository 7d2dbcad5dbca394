"""The health check's own row: /healthz proves the database accepts a write by writing it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from selfservice.dbtypes import UTCDateTime
from selfservice.extensions import db


class HealthProbe(db.Model):
    """One row per probe id, updated (and committed) by every health check."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
