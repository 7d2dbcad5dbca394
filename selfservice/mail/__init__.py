"""Mail: every message goes through the outbox; delivery is a separate worker."""
