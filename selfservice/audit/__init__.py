"""Audit events: who did what to whom, from where, and how it ended."""

# The writer's counts are kept by a session hook: registered whenever audit events can be written.
from selfservice.audit import counts as counts
