"""Outgoing webhooks, signed per the Standard Webhooks specification.

Each committed event (saas.events) is fanned out to the tenant's enabled endpoints that
subscribe to its type; each delivery is retried with exponential back-off for up to three
days, every attempt is logged, and an endpoint that has failed without a single success for
five days is disabled, with a notification for the tenant.

Signature (standardwebhooks.com): headers `webhook-id` (the event id, stable across retries
so receivers can de-duplicate), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, one per active secret, separated
by spaces, so that a rotated secret and its predecessor both verify during the overlap).
"""
