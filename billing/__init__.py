"""Billing: invoices, billing runs, payments, MRR metrics (built on the subscription issue).

``billing.documents`` is the invoice document layer (pure, no database): the frozen
invoice snapshot, the German/EU content rules, the EN 16931 XML and the PDF/A-3b
(Factur-X); see ``docs/invoices.md``.
"""
