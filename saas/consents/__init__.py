"""Consents a customer gave (Art. 6(1)(a), Art. 7 GDPR): what for, when, how, and withdrawal."""
