"""VAT ID syntax (python-stdnum), the VIES client against a local server, the fake."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tax.errors import VatIdSyntaxError
from tax.model import VatIdStatus
from tax.vatid import (
    FakeVatIdVerifier,
    VatIdCheck,
    ViesVerifier,
    check_vat_id,
    is_valid_syntax,
    normalise_vat_id,
    validate_vat_id,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _clock() -> datetime:
    return NOW


VALID_IDS = [
    "DE136695976", "ATU13585627", "BE0428759497", "BG175074752", "CY10259033P", "CZ25123891",
    "DK13585628", "EE100594102", "EL094259216", "ESB64717838", "FI20774740", "FR23334175221",
    "HR33392005961", "HU12892312", "IE6433435F", "IT00743110157", "LT119511515", "LU15027442",
    "LV40003521600", "MT11679112", "NL004495445B01", "PL8567346215", "PT501964843",
    "RO18547290", "SE123456789701", "SI50223054", "SK2022749619", "XI980780684",
]  # fmt: skip


@pytest.mark.parametrize("vat_id", VALID_IDS)
def test_vat_id_is_valid_when_syntax_and_checksum_are_right(vat_id: str) -> None:
    assert validate_vat_id(vat_id) == vat_id
    assert is_valid_syntax(vat_id)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("de 136 695 976", "DE136695976"),
        ("DE-136.695.976", "DE136695976"),
        ("GR094259216", "EL094259216"),
        ("gr 094259216", "EL094259216"),
    ],
)
def test_vat_id_is_normalised_when_written_loosely_or_with_gr(raw: str, normalised: str) -> None:
    assert normalise_vat_id(raw) == normalised
    assert validate_vat_id(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("DE136695978", "invalid_checksum"),
        ("ATU13585626", "invalid_checksum"),
        ("RO18547291", "invalid_checksum"),
        ("DE13669597", "invalid_length"),
        ("XX123456789", "invalid_component"),
        ("DEABCDEFGHI", "invalid_format"),
    ],
)
def test_vat_id_is_rejected_with_a_reason_when_malformed(raw: str, reason: str) -> None:
    with pytest.raises(VatIdSyntaxError) as info:
        validate_vat_id(raw)
    assert info.value.reason == reason
    assert info.value.kind == "invalid"
    assert not is_valid_syntax(raw)


# --- a local server that answers like VIES ------------------------------------------------


@dataclass
class FakeVies:
    """Canned answer of the local VIES stand-in, and the requests it received."""

    status: int = 200
    body: str = "{}"
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, status: int, payload: object) -> None:
        self.status = status
        self.body = payload if isinstance(payload, str) else json.dumps(payload)


@pytest.fixture
def vies() -> Iterator[tuple[FakeVies, str]]:
    state = FakeVies()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            if state.delay:
                time.sleep(state.delay)
            payload = state.body.encode()
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval lets shutdown() return at once instead of after 0.5 s.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/check-vat-number"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


VALID_REPLY = {
    "countryCode": "AT",
    "vatNumber": "U13585627",
    "requestDate": "2026-03-10T12:00:00.000Z",
    "valid": True,
    "requestIdentifier": "WAPIAAAAaEDkvhHx",
    "name": "ACME GmbH",
    "address": "Maria-Theresien-Straße 1\n6020 Innsbruck",
}


def test_vies_confirms_a_valid_id_and_keeps_the_evidence_when_it_answers(
    vies: tuple[FakeVies, str],
) -> None:
    state, url = vies
    state.answer(200, VALID_REPLY)
    check = ViesVerifier(url, clock=_clock).verify("ATU13585627", requester_vat_id="DE811907980")
    assert check.status is VatIdStatus.VALID
    assert (check.request_id, check.name, check.address) == (
        "WAPIAAAAaEDkvhHx",
        "ACME GmbH",
        "Maria-Theresien-Straße 1\n6020 Innsbruck",
    )
    assert (check.checked_at, check.source, check.requester_vat_id) == (
        NOW,
        "vies",
        "DE811907980",
    )
    assert check.raw is not None
    assert json.loads(check.raw) == VALID_REPLY
    (request,) = state.requests
    assert request == {
        "path": "/check-vat-number",
        "content_type": "application/json",
        "body": {
            "countryCode": "AT",
            "vatNumber": "U13585627",
            "requesterMemberStateCode": "DE",
            "requesterNumber": "811907980",
        },
    }


def test_vies_request_has_no_requester_when_none_is_given(vies: tuple[FakeVies, str]) -> None:
    state, url = vies
    state.answer(200, {**VALID_REPLY, "requestIdentifier": "", "name": "---", "address": None})
    check = ViesVerifier(url, clock=_clock).verify("ATU13585627")
    assert check.status is VatIdStatus.VALID
    assert (check.request_id, check.name, check.address) == (None, None, None)
    assert state.requests[0]["body"] == {"countryCode": "AT", "vatNumber": "U13585627"}


@pytest.mark.parametrize(
    ("status", "payload", "result", "error"),
    [
        (200, {**VALID_REPLY, "valid": False, "name": "---"}, VatIdStatus.INVALID, None),
        (200, {"isValid": True, "userError": "VALID"}, VatIdStatus.VALID, None),
        (200, {"isValid": False, "userError": "INVALID"}, VatIdStatus.INVALID, "INVALID"),
        (400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]},
         VatIdStatus.INVALID, "INVALID_INPUT"),
        (200, {"actionSucceed": False, "errorWrappers": [{"error": "MS_UNAVAILABLE"}]},
         VatIdStatus.UNAVAILABLE, "MS_UNAVAILABLE"),
        (500, {"actionSucceed": False, "errorWrappers": [{"error": "SERVICE_UNAVAILABLE"}]},
         VatIdStatus.UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        (200, {"actionSucceed": False}, VatIdStatus.UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        (200, {"errorWrappers": ["TIMEOUT"]}, VatIdStatus.UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        (200, {"isValid": False, "userError": "MS_MAX_CONCURRENT_REQ"}, VatIdStatus.UNAVAILABLE,
         "MS_MAX_CONCURRENT_REQ"),
        (200, {"countryCode": "AT"}, VatIdStatus.UNAVAILABLE, "no_result"),
        (200, ["not", "an", "object"], VatIdStatus.UNAVAILABLE, "unreadable_reply"),
        (503, "<html>Service Unavailable</html>", VatIdStatus.UNAVAILABLE, "unreadable_reply"),
    ],
)  # fmt: skip
def test_vies_answer_maps_to_a_status_when_the_register_replies(
    vies: tuple[FakeVies, str],
    status: int,
    payload: object,
    result: VatIdStatus,
    error: str | None,
) -> None:
    state, url = vies
    state.answer(status, payload)
    check = ViesVerifier(url, clock=_clock).verify("ATU13585627")
    assert (check.status, check.error) == (result, error)


def test_vies_is_unavailable_never_invalid_when_the_connection_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    check = ViesVerifier(f"http://127.0.0.1:{port}/check-vat-number", clock=_clock).verify(
        "ATU13585627"
    )
    assert check.status is VatIdStatus.UNAVAILABLE
    assert check.error is not None
    assert check.checked_at == NOW


def test_vies_is_unavailable_when_the_register_times_out(vies: tuple[FakeVies, str]) -> None:
    state, url = vies
    state.answer(200, VALID_REPLY)
    state.delay = 0.5
    check = ViesVerifier(url, timeout=0.1, clock=_clock).verify("ATU13585627")
    assert check.status is VatIdStatus.UNAVAILABLE


def test_vies_client_refuses_a_non_http_url_when_built() -> None:
    with pytest.raises(ValueError, match="http"):
        ViesVerifier("file:///etc/passwd")


def test_vies_client_uses_the_commission_endpoint_when_no_url_is_given() -> None:
    verifier = ViesVerifier()
    assert verifier.url.startswith("https://ec.europa.eu/taxation_customs/vies/rest-api/")
    assert verifier.clock().tzinfo is UTC


# --- check_vat_id and the fake ------------------------------------------------------------


def test_malformed_id_is_invalid_without_asking_the_register_when_checked() -> None:
    fake = FakeVatIdVerifier({"DE136695978": VatIdStatus.VALID}, clock=_clock)
    check = check_vat_id("DE 136695978", fake)
    assert (check.status, check.source, check.error, check.vat_id) == (
        VatIdStatus.INVALID,
        "syntax",
        "invalid_checksum",
        "DE136695978",
    )
    assert fake.calls == []


@pytest.mark.parametrize(
    ("raw", "status", "name"),
    [
        ("GR094259216", VatIdStatus.VALID, "Fake Trader"),
        ("ATU13585627", VatIdStatus.UNAVAILABLE, None),
        ("DE136695976", VatIdStatus.INVALID, None),
    ],
)
def test_fake_verifier_answers_from_its_table_when_checked(
    raw: str, status: VatIdStatus, name: str | None
) -> None:
    fake = FakeVatIdVerifier(
        {"EL094259216": VatIdStatus.VALID, "ATU13585627": VatIdStatus.UNAVAILABLE}, clock=_clock
    )
    check = check_vat_id(raw, fake, requester_vat_id="DE811907980")
    assert (check.status, check.name, check.source) == (status, name, "fake")
    assert fake.calls == [normalise_vat_id(raw)]
    assert check.request_id == "FAKE-1"
    assert check.error == ("MS_UNAVAILABLE" if status is VatIdStatus.UNAVAILABLE else None)


def test_fake_verifier_issues_no_request_id_when_no_requester_is_given() -> None:
    check = FakeVatIdVerifier({}, default=VatIdStatus.VALID).verify("ATU13585627")
    assert (check.status, check.request_id) == (VatIdStatus.VALID, None)


def test_check_serialises_its_evidence_when_stored() -> None:
    check = VatIdCheck("ATU13585627", VatIdStatus.VALID, NOW, "vies", request_id="X1")
    assert check.to_dict() == {
        "vat_id": "ATU13585627",
        "status": "valid",
        "checked_at": "2026-03-10T12:00:00+00:00",
        "source": "vies",
        "request_id": "X1",
        "name": None,
        "address": None,
        "requester_vat_id": None,
        "error": None,
        "raw": None,
    }
