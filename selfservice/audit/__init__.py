"""Audit events: who did what to whom, from where, and how it ended."""
