"""The staff-assisted fallback: help requests, queues and one-time reset links."""
