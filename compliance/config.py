"""What the compliance services need from the platform, passed in by the shell.

Domain code never reads Flask's config: the shell (`saas.gdpr.runtime`) builds one
`ComplianceConfig` from the settings and hands it to every service call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compliance.ledger import ErasureLedger
from compliance.links import LinkSigner
from compliance.registry import Registry, registry


@dataclass(frozen=True)
class ComplianceConfig:
    hmac_keys: tuple[bytes, ...]  # the audit HMAC key under the current secret key first
    export_dir: Path  # <VAR_DIR>/exports
    signer: LinkSigner
    ledger: ErasureLedger
    registry: Registry = field(default=registry)
    processor: str = "abowerk"

    @property
    def hmac_key(self) -> bytes:
        return self.hmac_keys[0]

    def export_path(self, tenant_id: str, export_id: str) -> Path:
        return self.export_dir / tenant_id / f"{export_id}.zip"
