"""Signed, expiring, single-use download links for exports.

The token is an `itsdangerous` signature (keyed with the application's secret key, salted for
this purpose) over the tenant id and the id of a `gdpr_export_links` row. The signature makes
the token unguessable and tamper-proof; the row makes it single-use (`used_at`) and expiring
(`expires_at`). Rotation: the previous secret keys still verify tokens issued before.
"""

from __future__ import annotations

from collections.abc import Sequence

from itsdangerous import BadSignature, URLSafeSerializer

from compliance.errors import DownloadLinkInvalidError

SALT = "abowerk.gdpr.export-link.v1"


class LinkSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("a secret key is needed to sign download links")
        # itsdangerous signs with the last key and verifies with any
        self._serializer = URLSafeSerializer(list(reversed(keys)), salt=SALT)

    def sign(self, tenant_id: str, link_id: str) -> str:
        return str(self._serializer.dumps({"t": tenant_id, "l": link_id}))

    def unsign(self, token: str) -> tuple[str, str]:
        """(tenant_id, link_id), or DownloadLinkInvalidError for anything not signed by us."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise DownloadLinkInvalidError("no such download") from None
        if not isinstance(payload, dict) or not all(
            isinstance(payload.get(k), str) for k in ("t", "l")
        ):
            raise DownloadLinkInvalidError("no such download")
        return payload["t"], payload["l"]
