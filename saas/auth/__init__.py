"""Authentication of tenant back-ends: API keys and OAuth 2.0 client credentials, with scopes."""
