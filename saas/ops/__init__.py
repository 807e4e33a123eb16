"""Operator tooling: backups and restores."""
