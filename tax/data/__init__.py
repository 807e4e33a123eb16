"""Dated rule tables of the tax package, kept as data (CSV) rather than code constants.

* ``standard_rates.csv``: standard VAT rates of the 27 member states since 2016.
* ``thresholds.csv``: EU thresholds (Art. 59c, evidence simplification, EU SME cap).
* ``kleinunternehmer.csv``: the § 19 UStG regimes and their limits.
* ``iso3166.csv``: ISO 3166-1 alpha-2 country codes (from the tz database's iso3166.tab).

Every dated row has ``valid_from`` and an inclusive ``valid_to`` (empty while in force).
"""
