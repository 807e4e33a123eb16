"""The event outbox: domain changes record events in the same transaction as the change.

Nothing here sends anything. Webhook delivery (saas.webhooks) reads committed events, so an
event of a rolled-back change can never leave the building.
"""
