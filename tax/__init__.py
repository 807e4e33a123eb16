"""Pure EU/German VAT rules for electronically supplied services (SaaS subscriptions).

No Flask, no SQLAlchemy, no network in the decision path: frozen dataclasses in, a
:class:`~tax.model.TaxDecision` out (:func:`tax.decide.decide`). Rates and thresholds are
dated data (``tax/data``). See ``docs/tax.md`` for each treatment, its legal basis and the
configurable defaults where the law is unsettled.

Modules: ``model`` (value objects), ``decide`` (the decision), ``rates``, ``thresholds``,
``territories``, ``location`` (evidence), ``kleinunternehmer`` (§ 19 / § 19a UStG),
``rounding``, ``vatid`` (syntax, VIES), ``oss`` (OSS return, EC sales list), ``notes``
(invoice wording), ``cases`` and ``cli`` (``abowerk tax``), ``errors``.
"""

from tax.decide import decide
from tax.model import (
    DEFAULT_POLICY,
    Counters,
    CustomerFacts,
    SellerProfile,
    Supply,
    TaxDecision,
    TaxPolicy,
    Treatment,
)

__all__ = [
    "DEFAULT_POLICY",
    "Counters",
    "CustomerFacts",
    "SellerProfile",
    "Supply",
    "TaxDecision",
    "TaxPolicy",
    "Treatment",
    "decide",
]
