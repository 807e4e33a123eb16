"""Replacement tokens, scrubbing, and the audit log's HMAC of the subject."""

from __future__ import annotations

import hashlib

import pytest

from compliance import audit
from compliance.tokens import (
    REDACTED,
    contains_any,
    erased_email,
    erased_text,
    is_erased_email,
    scrub,
    scrub_json,
)


def test_erased_values_are_random_tokens_when_generated_not_hashes() -> None:
    first, second = erased_email(), erased_email()
    assert first != second
    assert is_erased_email(first)
    assert first.endswith("@invalid.example")
    original = "erika@example.de"
    assert hashlib.sha256(original.encode()).hexdigest()[:16] not in first
    assert erased_text() != erased_text()


def test_scrub_replaces_every_identifier_case_insensitively_when_present() -> None:
    text = "Erika Mustermann <ERIKA@example.de> lives at Hauptstr. 1"
    result = scrub(text, ["erika@example.de", "Erika Mustermann", "Hauptstr. 1", "DE"])
    assert result == f"{REDACTED} <{REDACTED}> lives at {REDACTED}"
    assert scrub(None, ["x"]) is None
    assert scrub("short DE", ["DE"]) == "short DE"  # too short to scrub safely


def test_scrub_json_redacts_keys_and_values_at_any_depth_when_asked() -> None:
    data = {"object": {"email": "erika@example.de", "note": "for Erika Mustermann", "n": 3}}
    result = scrub_json(data, ["Erika Mustermann"], redact_keys=frozenset({"email"}))
    assert result == {"object": {"email": REDACTED, "note": f"for {REDACTED}", "n": 3}}
    assert data["object"]["email"] == "erika@example.de"  # a copy, not in place
    assert contains_any("mail from erika@example.de", ["ERIKA@EXAMPLE.DE"])


def test_subject_hmac_is_keyed_and_normalised_when_computed() -> None:
    key = audit.derive_hmac_key("secret")
    assert audit.subject_hmac(key, " Erika@Example.DE ") == audit.subject_hmac(
        key, "erika@example.de"
    )
    other = audit.derive_hmac_key("another secret")
    assert audit.subject_hmac(other, "erika@example.de") != audit.subject_hmac(
        key, "erika@example.de"
    )
    assert "erika" not in audit.subject_hmac(key, "erika@example.de")


@pytest.mark.parametrize(
    "details",
    [{"email": "erika@example.de"}, {"nested": {"to": ["a@b.de"]}}, {"blob": object()}],
)
def test_audit_details_are_refused_when_they_look_like_personal_data(details: dict) -> None:
    with pytest.raises(ValueError, match="audit details"):
        audit._check_details(details)
