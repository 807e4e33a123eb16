"""The tenant's seller profile: who issues the invoices (legal name, address, Steuernummer /
USt-IdNr., bank account, branding), the regime data the tax engine needs (Kleinunternehmer,
OSS registration, EU SME scheme, destination option, counters) and the invoicing settings
(language, payment terms, number series, accepted currencies). ``GET/PUT /v1/seller_profile``.
See ``docs/invoicing.md``.
"""
