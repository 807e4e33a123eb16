"""The export ZIP's layout and the signed download tokens (no database)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from compliance.errors import DownloadLinkInvalidError
from compliance.export_schemas import CATEGORIES, Manifest
from compliance.exports import build_export
from compliance.links import LinkSigner
from compliance.registry import ExportFile, ExportPart, Provider

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROFILE = {
    "customer_id": "cus_1",
    "livemode": False,
    "email": "erika@example.de",
    "name": "Erika Mustermann",
    "is_business": False,
    "locale": "de-DE",
    "external_ref": None,
    "metadata": {},
    "created_at": AT,
    "updated_at": AT,
    "erased": False,
    "not_in_the_schema": "dropped",
}
PROVIDER = Provider(
    name="p", covers=frozenset(), purpose="contract", retention="while customer",
    categories=("profile",),
)  # fmt: skip


def _build(part: ExportPart) -> bytes:
    return build_export(
        [(PROVIDER, part)],
        request_id="dsr_1",
        request_kind="access",
        generated_at=AT,
        controller="Muster GmbH",
        processor="abowerk",
        subject={"customer_id": "cus_1", "livemode": False},
    ).content


def test_export_has_manifest_and_every_category_when_built() -> None:
    part = ExportPart(
        records={"profile": [PROFILE]},
        files=[ExportFile("invoices/inv_1.pdf", b"%PDF-")],
    )
    archive = zipfile.ZipFile(io.BytesIO(_build(part)))
    names = archive.namelist()
    assert names[0] == "manifest.json"
    assert {c.file for c in CATEGORIES} <= set(names)
    assert "invoices/inv_1.pdf" in names
    manifest = json.loads(archive.read("manifest.json"))
    Manifest().load(manifest)
    profile = next(c for c in manifest["categories"] if c["name"] == "profile")
    assert profile["records"] == 1
    assert profile["purposes"] == ["contract"]
    dumped = json.loads(archive.read("profile.json"))
    assert "not_in_the_schema" not in dumped[0]  # only declared fields leave
    assert json.loads(archive.read("payments.json")) == []


def test_export_is_byte_identical_when_built_twice_from_the_same_input() -> None:
    part = ExportPart(records={"profile": [PROFILE]})
    assert _build(part) == _build(part)


@pytest.mark.parametrize("path", ["manifest.json", "profile.json", "../etc/passwd", "/abs"])
def test_export_refuses_a_file_when_its_path_is_reserved_or_escapes(path: str) -> None:
    with pytest.raises(ValueError, match="bad file path"):
        _build(ExportPart(files=[ExportFile(path, b"x")]))


def test_export_refuses_records_when_their_category_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        _build(ExportPart(records={"favourite_colours": [{}]}))


def test_download_token_round_trips_and_survives_key_rotation_when_signed() -> None:
    old = LinkSigner(["old-key"])
    token = old.sign("ten_1", "gxl_1")
    assert old.unsign(token) == ("ten_1", "gxl_1")
    rotated = LinkSigner(["new-key", "old-key"])
    assert rotated.unsign(token) == ("ten_1", "gxl_1")
    with pytest.raises(DownloadLinkInvalidError):
        LinkSigner(["new-key"]).unsign(token)


@pytest.mark.parametrize("token", ["", "garbage", "eyJ0IjoidGVuXzEiLCJsIjoiZ3hsXzEifQ.forged"])
def test_tampered_download_token_is_invalid_when_checked(token: str) -> None:
    with pytest.raises(DownloadLinkInvalidError):
        LinkSigner(["key"]).unsign(token)
