"""Customers of a tenant: the people and companies that subscribe and get invoiced."""
