"""VAT ID checks: offline syntax and checksum, and online confirmation behind an interface.

Rules (TAX_RULES.md §7, Art. 18 and 31 Reg. 282/2011 and 904/2010, § 18e UStG):

* Syntax and checksum per member state with python-stdnum (``stdnum.eu.vat``); Greece's
  prefix is normalised to ``EL`` (stdnum also accepts ``GR``). ``XI`` (Northern Ireland)
  is valid syntax but covers goods only; the decision treats such customers as UK.
* Online confirmation via VIES (:class:`ViesVerifier`, REST API of the European
  Commission, stdlib ``urllib``). Results are ``valid``, ``invalid`` or ``unavailable``;
  a register that does not answer (network error, timeout, ``MS_UNAVAILABLE``, HTTP 5xx,
  unreadable reply) is **unavailable, never invalid**. The check keeps the evidence:
  request identifier (consultation number), name, address, time and the raw reply.
* The decision function never calls a verifier: callers check first and pass the status
  in (:attr:`tax.model.CustomerFacts.vat_id_status`). :class:`FakeVatIdVerifier` serves
  tests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.util import clean

from tax.errors import VatIdSyntaxError
from tax.model import VatIdStatus

VIES_REST_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api/check-vat-number"

Clock = Callable[[], datetime]

# Error codes with which VIES says the number itself is malformed; everything else it
# reports (MS_UNAVAILABLE, TIMEOUT, SERVICE_UNAVAILABLE, *_MAX_CONCURRENT_REQ, ...) means
# the register could not answer.
_VIES_INVALID_ERRORS = frozenset({"INVALID_INPUT"})

_SYNTAX_REASONS: tuple[tuple[type[ValidationError], str], ...] = (
    (InvalidLength, "invalid_length"),
    (InvalidChecksum, "invalid_checksum"),
    (InvalidFormat, "invalid_format"),
    (InvalidComponent, "invalid_component"),
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def normalise_vat_id(raw: str) -> str:
    """``raw`` without spaces, dots and dashes, upper case, Greece as ``EL``."""
    compact = clean(raw, " -./,:").upper().strip()
    return "EL" + compact[2:] if compact.startswith("GR") else compact


def validate_vat_id(raw: str) -> str:
    """The normalised VAT ID when syntax and checksum are right.

    Raises :class:`VatIdSyntaxError` whose ``reason`` is ``invalid_length``,
    ``invalid_checksum``, ``invalid_format`` or ``invalid_component`` (unknown country).
    """
    number = normalise_vat_id(raw)
    try:
        eu_vat.validate(number)
    except ValidationError as exc:
        reason = next(
            (name for cls, name in _SYNTAX_REASONS if isinstance(exc, cls)), "invalid_format"
        )
        raise VatIdSyntaxError(
            f"VAT ID {raw!r} is not valid: {exc}", reason=reason, field="vat_id"
        ) from exc
    return number


def is_valid_syntax(raw: str) -> bool:
    """Whether ``raw`` passes :func:`validate_vat_id`."""
    try:
        validate_vat_id(raw)
    except VatIdSyntaxError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class VatIdCheck:
    """The result of one VAT ID check, kept as evidence with the invoice (8/10 years).

    ``source`` is ``syntax`` (rejected offline), ``vies`` or ``fake``; ``request_id`` the
    register's consultation number when one was issued; ``error`` the register's error
    code for ``unavailable`` (or ``invalid`` by VIES input check) results.
    """

    vat_id: str
    status: VatIdStatus
    checked_at: datetime
    source: str
    request_id: str | None = None
    name: str | None = None
    address: str | None = None
    requester_vat_id: str | None = None
    error: str | None = None
    raw: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The evidence as a JSON-ready mapping."""
        return {
            "vat_id": self.vat_id,
            "status": self.status.value,
            "checked_at": self.checked_at.isoformat(),
            "source": self.source,
            "request_id": self.request_id,
            "name": self.name,
            "address": self.address,
            "requester_vat_id": self.requester_vat_id,
            "error": self.error,
            "raw": self.raw,
        }


class VatIdVerifier(Protocol):
    """A register that confirms VAT IDs (VIES, BZSt eVatR, a fake)."""

    def verify(self, vat_id: str, *, requester_vat_id: str | None = None) -> VatIdCheck:
        """Check the normalised ``vat_id``; never raises for register outages."""
        ...


def check_vat_id(
    raw: str,
    verifier: VatIdVerifier,
    *,
    requester_vat_id: str | None = None,
    clock: Clock = _utc_now,
) -> VatIdCheck:
    """Check ``raw``: offline syntax first (a malformed ID is ``invalid`` without asking the
    register), then the register."""
    try:
        number = validate_vat_id(raw)
    except VatIdSyntaxError as exc:
        return VatIdCheck(
            vat_id=normalise_vat_id(raw),
            status=VatIdStatus.INVALID,
            checked_at=clock(),
            source="syntax",
            requester_vat_id=requester_vat_id,
            error=exc.reason,
        )
    return verifier.verify(number, requester_vat_id=requester_vat_id)


def _clean(value: object) -> str | None:
    # VIES sends "---" (or nothing) where a member state does not disclose the data.
    if not isinstance(value, str):
        return None
    text = value.strip()
    return None if text in {"", "---"} else text


class ViesVerifier:
    """VIES REST client (``POST /check-vat-number``), stdlib only.

    With ``requester_vat_id`` VIES issues a consultation number (``requestIdentifier``)
    that serves as proof of the check.
    """

    def __init__(
        self,
        url: str = VIES_REST_URL,
        *,
        timeout: float = 10.0,
        clock: Clock = _utc_now,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"VIES URL must be http(s): {url!r}")
        self.url = url
        self.timeout = timeout
        self.clock = clock

    def verify(self, vat_id: str, *, requester_vat_id: str | None = None) -> VatIdCheck:
        """Ask VIES about ``vat_id`` (normalised, with country prefix)."""
        body: dict[str, str] = {"countryCode": vat_id[:2], "vatNumber": vat_id[2:]}
        if requester_vat_id:
            body["requesterMemberStateCode"] = requester_vat_id[:2]
            body["requesterNumber"] = requester_vat_id[2:]
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        checked_at = self.clock()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked in __init__
                raw = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            # VIES reports register errors with 4xx/5xx and a JSON body; read it if any.
            try:
                raw = exc.read().decode("utf-8", errors="replace")
            finally:
                exc.close()
        except (OSError, ValueError) as exc:
            # Connection refused, DNS failure, timeout: the register did not answer.
            return self._unavailable(vat_id, requester_vat_id, checked_at, type(exc).__name__)
        return self._parse(vat_id, requester_vat_id, checked_at, raw)

    def _unavailable(
        self,
        vat_id: str,
        requester_vat_id: str | None,
        checked_at: datetime,
        error: str,
        raw: str | None = None,
    ) -> VatIdCheck:
        return VatIdCheck(
            vat_id=vat_id,
            status=VatIdStatus.UNAVAILABLE,
            checked_at=checked_at,
            source="vies",
            requester_vat_id=requester_vat_id,
            error=error,
            raw=raw,
        )

    def _parse(
        self, vat_id: str, requester_vat_id: str | None, checked_at: datetime, raw: str
    ) -> VatIdCheck:
        try:
            data = json.loads(raw)
        except ValueError:
            return self._unavailable(vat_id, requester_vat_id, checked_at, "unreadable_reply", raw)
        if not isinstance(data, dict):
            return self._unavailable(vat_id, requester_vat_id, checked_at, "unreadable_reply", raw)
        errors = data.get("errorWrappers") or []
        user_error = data.get("userError")
        if errors or data.get("actionSucceed") is False:
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            user_error = str(first.get("error") or "SERVICE_UNAVAILABLE")
        valid = data.get("valid", data.get("isValid"))
        if user_error in _VIES_INVALID_ERRORS:
            status = VatIdStatus.INVALID
        elif user_error not in {None, "VALID", "INVALID"} or not isinstance(valid, bool):
            return self._unavailable(
                vat_id, requester_vat_id, checked_at, str(user_error or "no_result"), raw
            )
        else:
            status = VatIdStatus.VALID if valid else VatIdStatus.INVALID
        return VatIdCheck(
            vat_id=vat_id,
            status=status,
            checked_at=checked_at,
            source="vies",
            request_id=_clean(data.get("requestIdentifier")),
            name=_clean(data.get("name")),
            address=_clean(data.get("address")),
            requester_vat_id=requester_vat_id,
            error=user_error if status is VatIdStatus.INVALID and user_error else None,
            raw=raw,
        )


class FakeVatIdVerifier:
    """A verifier for tests: answers from a mapping of VAT ID → status.

    Unknown IDs get ``default``. Every call is recorded in ``calls``.
    """

    def __init__(
        self,
        results: Mapping[str, VatIdStatus],
        *,
        default: VatIdStatus = VatIdStatus.INVALID,
        name: str | None = "Fake Trader",
        address: str | None = "Fake Street 1",
        clock: Clock = _utc_now,
    ) -> None:
        self.results = dict(results)
        self.default = default
        self.name = name
        self.address = address
        self.clock = clock
        self.calls: list[str] = []

    def verify(self, vat_id: str, *, requester_vat_id: str | None = None) -> VatIdCheck:
        """Answer from the mapping."""
        self.calls.append(vat_id)
        status = self.results.get(vat_id, self.default)
        valid = status is VatIdStatus.VALID
        return VatIdCheck(
            vat_id=vat_id,
            status=status,
            checked_at=self.clock(),
            source="fake",
            request_id=f"FAKE-{len(self.calls)}" if requester_vat_id else None,
            name=self.name if valid else None,
            address=self.address if valid else None,
            requester_vat_id=requester_vat_id,
            error="MS_UNAVAILABLE" if status is VatIdStatus.UNAVAILABLE else None,
        )
