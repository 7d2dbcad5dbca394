"""Help-desk pages under /helpdesk."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")
