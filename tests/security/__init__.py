"""Tests for selfservice.security."""
