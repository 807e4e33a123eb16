"""The Flask application shell and the platform's domain packages (tenants, customers, auth)."""
