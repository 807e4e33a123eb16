"""The catalog: products, their tiered plans (Starter/Pro/Business) and the prices of each plan.

A price that has (or had) subscribers never changes its terms: changing its amount creates a
new version and archives the old one, so every subscription, history row and charge keeps
pointing at the terms it was sold under (see `services.update_price`).
"""
