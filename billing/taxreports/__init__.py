"""Tax reports built from finalized invoices and credit notes: the OSS return (§ 18j UStG,
Art. 369g VAT Directive) and the EC sales list (Zusammenfassende Meldung, § 18a UStG) of a
quarter. The pure builders live in :mod:`tax.oss`; this package feeds them the ledger."""
