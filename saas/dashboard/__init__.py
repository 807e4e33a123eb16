"""The tenant dashboard: staff accounts (password + TOTP), roles, server-rendered pages."""
