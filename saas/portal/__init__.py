"""The customer self-service portal: one-time links, cookie sessions, server-rendered pages."""
