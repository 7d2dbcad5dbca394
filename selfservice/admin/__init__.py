"""The admin console: audit, lockout and rate-limit logs, unlock, question bank, dashboard."""
