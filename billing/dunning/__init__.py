"""Dunning: what happens after a payment fails (see :mod:`billing.dunning.services`)."""
