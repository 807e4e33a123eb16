"""The frozen invoice snapshot: both parties, the lines with their tax decisions, and the
totals computed from them.

An issued invoice is never changed (GoBD, § 146 Abs. 4 AO); it is corrected by a new
document (a credit note, ``DocumentKind.CREDIT_NOTE``). The snapshot therefore copies
everything the document shows — the seller's and the buyer's data *as they were* on the
issue date, each line's tax decision — so that the same bytes can be regenerated years
later from the stored snapshot alone (GoBD as amended 14.07.2025 accepts a regenerable,
content-identical copy instead of a stored picture).

Rules kept here:

* **Money** is integer minor units at rest (``unit_price_minor``), ``Decimal`` in
  computation, rounded half-up at named points only (:mod:`tax.rounding`).
* **Line net** = round half-up(quantity × unit price) to the minor unit (BR-DEC-23: at most
  the currency's decimals).
* **VAT** per (category, rate) group = round half-up(sum of line nets × rate / 100)
  (EN 16931 BR-CO-17, :func:`tax.rounding.vat_breakdown`); line VAT amounts are never
  summed. Totals: net (BT-106 = BT-109, no document allowances or charges), VAT (BT-110),
  gross (BT-112), paid (BT-113, e.g. charged to a card before the invoice was issued) and
  due (BT-115 = gross − paid).
* Totals are **computed** in ``__post_init__`` (``init=False``): they can never be passed
  in, so nothing shown on a document is trusted from input.
* **Credit notes** carry **positive** amounts; the document type (UNTDID 1001 code 381,
  "Credit note") gives the direction. This is EN 16931's and XRechnung's practice for a
  credit note (negative amounts belong to a corrected invoice, code 384). Accounting code
  that needs signed amounts multiplies by :attr:`InvoiceSnapshot.sign`.
* **Foreign currency**: a non-EUR invoice that charges VAT states the VAT in EUR too
  (Art. 230 VAT Directive; § 16 Abs. 6 UStG), converted per VAT group at the given rate
  (units of the invoice currency per 1 EUR, the ECB quotation) and rounded half-up.

:func:`canonical_json` serialises a snapshot with sorted keys, ``Decimal`` values as
normalised strings and the computed totals included; :func:`content_sha256` hashes those
bytes, and :func:`snapshot_from_json` reads them back, refusing a snapshot whose stored
totals differ from the recomputed ones (:class:`SnapshotIntegrityError`).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from billing.documents.errors import SnapshotIntegrityError
from tax.model import TaxDecision, Treatment, VatCategory
from tax.notes import NoteKey
from tax.rounding import TaxableLine, exponent, round_money, vat_breakdown

SNAPSHOT_FORMAT = "abowerk.invoice_snapshot/1"
EUR = "EUR"
_ONE = Decimal(1)


class DocumentKind(StrEnum):
    """What the document is, which decides its content rules and its EN 16931 type code."""

    INVOICE = "invoice"  # § 14 Abs. 4 UStG (or § 34a UStDV for a Kleinunternehmer); 380
    CREDIT_NOTE = "credit_note"  # corrects an earlier invoice (§ 31 Abs. 5 UStDV); 381
    SMALL_AMOUNT = "small_amount"  # § 33 UStDV, gross ≤ 250 EUR; 380

    @property
    def type_code(self) -> str:
        """The UNTDID 1001 document type code (EN 16931 BT-3)."""
        return "381" if self is DocumentKind.CREDIT_NOTE else "380"


class Language(StrEnum):
    """The language of the printed document and of its notes."""

    DE = "de"
    EN = "en"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; ``country`` is ISO 3166-1 alpha-2. Empty parts are ``None``:
    whether they are required depends on the document (:mod:`billing.documents.rules`)."""

    country: str
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class BankAccount:
    """Where the buyer pays (EN 16931 BG-17: IBAN BT-84, account name BT-85, BIC BT-86)."""

    iban: str
    account_holder: str
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """The seller's contact point (EN 16931 BG-6; mandatory in XRechnung, BR-DE-2/5/6/7).
    ``email`` is also the seller's electronic address (BT-34, scheme ``EM``) there."""

    name: str
    phone: str
    email: str


@dataclass(frozen=True, slots=True)
class SellerParty:
    """The tenant as it was on the issue date.

    ``tax_number`` is the Steuernummer (BT-32), ``vat_id`` the USt-IdNr. (BT-31); § 14
    Abs. 4 Nr. 2 UStG needs one of them, reverse charge needs the VAT ID (§ 14a Abs. 1),
    and an out-of-scope (category O) invoice may not carry it (BR-O-02), so it needs the
    Steuernummer. ``legal_registration_id`` is the Handelsregister entry (BT-30), e.g.
    ``"HRB 123456 B, Amtsgericht Charlottenburg"``. ``eu_sme_id`` is the ``EX`` number of
    the EU SME scheme (§ 19a UStG). ``logo`` is PNG or JPEG bytes; ``accent_color`` a CSS
    hex colour ``#rrggbb``.
    """

    legal_name: str
    address: Address
    tax_number: str | None = None
    vat_id: str | None = None
    kleinunternehmer: bool = False
    bank: BankAccount | None = None
    logo: bytes | None = None
    accent_color: str = "#1f4e79"
    contact: Contact | None = None
    legal_registration_id: str | None = None
    eu_sme_id: str | None = None


@dataclass(frozen=True, slots=True)
class BuyerParty:
    """The customer as it was on the issue date; ``vat_id`` as given and checked then.
    ``electronic_address`` (e-mail) is BT-49, mandatory in XRechnung."""

    name: str
    address: Address
    vat_id: str | None = None
    is_business: bool = False
    electronic_address: str | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """A service period, both days included (EN 16931 BG-14 / BG-26)."""

    start: date
    end: date


@dataclass(frozen=True, slots=True)
class LineTax:
    """The tax decision of one line, as far as the document shows it.

    ``rate`` is a percentage (``Decimal("19")``), zero unless ``category`` is ``S``;
    ``taxing_country`` is the member state whose VAT applies (for OSS the destination).
    """

    treatment: Treatment
    category: VatCategory
    rate: Decimal
    exemption_reason_code: str | None = None
    exemption_reason: str | None = None
    note_keys: tuple[NoteKey, ...] = ()
    taxing_country: str | None = None

    @classmethod
    def from_decision(cls, decision: TaxDecision) -> LineTax:
        """The document-relevant part of a :class:`tax.model.TaxDecision`."""
        return cls(
            treatment=decision.treatment,
            category=decision.category,
            rate=decision.rate,
            exemption_reason_code=decision.exemption_reason_code,
            exemption_reason=decision.exemption_reason,
            note_keys=decision.note_keys,
            taxing_country=decision.taxing_country,
        )


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line. ``unit_price_minor`` is net, in minor units of ``currency`` (which must be
    the document's); ``unit_code`` is UN/ECE Rec. 20 (``C62`` one, ``MON`` month)."""

    description: str
    quantity: Decimal
    unit_price_minor: int
    currency: str
    tax: LineTax
    period: Period | None = None
    unit_code: str = "C62"

    @property
    def net_minor(self) -> int:
        """Line net = round half-up(quantity × unit price) in minor units (BT-131)."""
        return int((self.quantity * self.unit_price_minor).quantize(_ONE, ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class DocumentReference:
    """The invoice a credit note corrects (EN 16931 BG-3: number BT-25, date BT-26)."""

    number: str
    issue_date: date


@dataclass(frozen=True, slots=True)
class EurConversion:
    """Exchange rate for stating the VAT of a non-EUR invoice in EUR: ``rate`` units of the
    invoice currency per 1 EUR (ECB quotation) published on ``rate_date``."""

    rate: Decimal
    rate_date: date
    source: str = "ECB"


@dataclass(frozen=True, slots=True)
class VatGroup:
    """The VAT of one (category, rate) on the document (EN 16931 BG-23)."""

    category: VatCategory
    rate: Decimal
    taxable_minor: int
    vat_minor: int
    exemption_reason_code: str | None
    exemption_reason: str | None
    vat_eur_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Computed totals; every amount is in minor units of the document currency."""

    line_net_minor: tuple[int, ...]
    net_minor: int
    vat_minor: int
    gross_minor: int
    groups: tuple[VatGroup, ...]
    paid_minor: int
    due_minor: int
    vat_eur_minor: int | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    """Everything one invoice, credit note or small-amount invoice shows.

    ``supply_date`` is the tax point the lines were decided on (§ 14 Abs. 4 Nr. 6 UStG,
    EN 16931 BT-72); ``service_period`` the billed period (BG-14), if any.
    ``buyer_reference`` is BT-10 (the Leitweg-ID for German public buyers, mandatory in
    XRechnung). ``paid_minor`` is what the buyer paid before the issue date (a card
    payment at checkout). ``note_keys`` add document notes to those the lines carry.
    """

    kind: DocumentKind
    number: str
    issue_date: date
    supply_date: date
    seller: SellerParty
    buyer: BuyerParty
    lines: tuple[InvoiceLine, ...]
    currency: str = EUR
    language: Language = Language.DE
    service_period: Period | None = None
    due_date: date | None = None
    payment_reference: str | None = None
    payment_terms: str | None = None
    paid_minor: int = 0
    credit_note_of: DocumentReference | None = None
    eur_conversion: EurConversion | None = None
    buyer_reference: str | None = None
    note_keys: tuple[NoteKey, ...] = ()
    totals: Totals = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "note_keys", tuple(self.note_keys))
        object.__setattr__(self, "totals", compute_totals(self))

    @property
    def sign(self) -> int:
        """+1 for invoices, -1 for credit notes: multiply amounts by it for a ledger."""
        return -1 if self.kind is DocumentKind.CREDIT_NOTE else 1

    @property
    def legal_note_keys(self) -> tuple[NoteKey, ...]:
        """The notes the document prints: the lines' notes, then the document's, each once."""
        keys: dict[NoteKey, None] = {}
        for line in self.lines:
            for key in line.tax.note_keys:
                keys[key] = None
        for key in self.note_keys:
            keys[key] = None
        return tuple(keys)

    @property
    def categories(self) -> frozenset[VatCategory]:
        """The VAT categories of the lines."""
        return frozenset(line.tax.category for line in self.lines)


def with_number(
    snapshot: InvoiceSnapshot, number: str, *, payment_reference: str | None, due_date: date | None
) -> InvoiceSnapshot:
    """``dataclasses.replace`` of the fields numbering sets, keeping the computed totals:
    they depend on the lines, currency, conversion and prepaid amount only, and a billing
    run renumbers every snapshot it builds (recomputing them was a tenth of its time)."""
    copy = object.__new__(InvoiceSnapshot)
    for name in InvoiceSnapshot.__slots__:
        object.__setattr__(copy, name, getattr(snapshot, name))
    object.__setattr__(copy, "number", number)
    object.__setattr__(copy, "payment_reference", payment_reference)
    object.__setattr__(copy, "due_date", due_date)
    return copy


def to_decimal(minor: int, currency: str) -> Decimal:
    """``minor`` units of ``currency`` as a Decimal amount (``1999`` EUR → ``19.99``)."""
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """A Decimal amount already rounded to the minor unit of ``currency``, in minor units."""
    return int(amount.scaleb(exponent(currency)))


def compute_totals(snapshot: InvoiceSnapshot) -> Totals:
    """Line nets, VAT per (category, rate) on the summed nets (BR-CO-17) and the totals."""
    currency = snapshot.currency
    line_nets = tuple(line.net_minor for line in snapshot.lines)
    breakdown = vat_breakdown(
        (
            TaxableLine(line.tax.category.value, line.tax.rate, to_decimal(net, currency))
            for line, net in zip(snapshot.lines, line_nets, strict=True)
        ),
        currency,
    )
    reasons: dict[tuple[str, Decimal], tuple[str | None, str | None]] = {}
    for line in snapshot.lines:
        key = (line.tax.category.value, line.tax.rate)
        reasons.setdefault(key, (line.tax.exemption_reason_code, line.tax.exemption_reason))
    conversion = snapshot.eur_conversion if currency != EUR else None
    groups = []
    for group in breakdown:
        code, reason = reasons[(group.category, group.rate)]
        vat_eur = None
        if conversion is not None and conversion.rate > 0:
            vat_eur = to_minor(round_money(group.vat / conversion.rate, EUR), EUR)
        groups.append(
            VatGroup(
                category=VatCategory(group.category),
                rate=group.rate,
                taxable_minor=to_minor(group.taxable_amount, currency),
                vat_minor=to_minor(group.vat, currency),
                exemption_reason_code=code,
                exemption_reason=reason,
                vat_eur_minor=vat_eur,
            )
        )
    net = sum(line_nets)
    vat = sum(group.vat_minor for group in groups)
    vat_eur_total = None
    if conversion is not None and conversion.rate > 0:
        vat_eur_total = sum(group.vat_eur_minor or 0 for group in groups)
    return Totals(
        line_net_minor=line_nets,
        net_minor=net,
        vat_minor=vat,
        gross_minor=net + vat,
        groups=tuple(groups),
        paid_minor=snapshot.paid_minor,
        due_minor=net + vat - snapshot.paid_minor,
        vat_eur_minor=vat_eur_total,
    )


# --- canonical JSON -------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _plain_decimal(value: Decimal) -> str:
    """A Decimal as a normalised plain string: equal values give equal strings
    (``Decimal("19.0")`` and ``Decimal("19")`` → ``"19"``). Cached: a billing run
    serialises the same few rates and amounts hundreds of thousands of times, and equal
    Decimals (which hash equal) have the same normalised string."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


# The init fields of each dataclass type met so far: ``dataclasses.fields`` walks the class
# on every call, and a snapshot holds dozens of dataclass instances.
_FIELDS: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, bool, type(None)})
_ENUMS: set[type] = set()


def _jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    # exact types first (the common case, one dict lookup each); anything else, subclasses
    # included, takes the general path below, which also learns new dataclass types
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is Decimal:
        return _plain_decimal(value)
    if kind is tuple:
        return [_jsonable(item) for item in value]
    if kind is date:
        return value.isoformat()
    if kind in _ENUMS:
        return value.value
    names = _FIELDS.get(kind)
    if names is not None:
        return {name: _jsonable(getattr(value, name)) for name in names}
    return _jsonable_general(value)


def _jsonable_general(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    if isinstance(value, StrEnum):
        _ENUMS.add(type(value))
        return value.value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value) if f.init)
        return _jsonable(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in an invoice snapshot")


def snapshot_to_dict(snapshot: InvoiceSnapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data: its inputs, the format tag and the computed totals
    (so that the content hash covers the amounts the documents print)."""
    data: dict[str, Any] = _jsonable(snapshot)
    data["format"] = SNAPSHOT_FORMAT
    data["totals"] = _jsonable(snapshot.totals)
    return data


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# seller JSON by object identity (the object is held, so its id is not reused): a billing
# run snapshots tens of thousands of invoices of one seller object, and the seller is a
# fifth of every snapshot (a logo, when there is one, far more)
_SELLERS: dict[int, tuple[SellerParty, str]] = {}


def _seller_json(seller: SellerParty) -> str:
    cached = _SELLERS.get(id(seller))
    if cached is not None and cached[0] is seller:
        return cached[1]
    if len(_SELLERS) >= 64:
        _SELLERS.clear()
    text = _encode(_jsonable(seller))
    _SELLERS[id(seller)] = (seller, text)
    return text


def canonical_json(snapshot: InvoiceSnapshot) -> bytes:
    """UTF-8 JSON with sorted keys and no insignificant whitespace: equal snapshots give
    equal bytes. ``logo`` is base64, so a stored snapshot regenerates its PDF alone.

    The same bytes as ``json.dumps(snapshot_to_dict(snapshot), sort_keys=True, …)``, with
    the seller spliced in at its sorted place from :func:`_seller_json`."""
    names = _FIELDS.get(InvoiceSnapshot)
    if names is None:
        _jsonable(snapshot)  # learns the field names
        names = _FIELDS[InvoiceSnapshot]
    before: dict[str, Any] = {"format": SNAPSHOT_FORMAT}
    after: dict[str, Any] = {"totals": _jsonable(snapshot.totals)}
    for name in names:
        if name != "seller":
            (before if name < "seller" else after)[name] = _jsonable(getattr(snapshot, name))
    head, tail = _encode(before), _encode(after)
    # both halves always hold keys ("buyer"…, "totals"), so each is "{…}" with content
    text = f'{head[:-1]},"seller":{_seller_json(snapshot.seller)},{tail[1:]}'
    return text.encode("utf-8")


def content_sha256(snapshot: InvoiceSnapshot) -> str:
    """Hex SHA-256 of :func:`canonical_json`: the snapshot's fingerprint for the audit log."""
    return hashlib.sha256(canonical_json(snapshot)).hexdigest()


def _from_jsonable(tp: Any, value: Any, path: str) -> Any:  # noqa: PLR0911, PLR0912 - type dispatch
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        options = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if value is None:
            return None
        return _from_jsonable(options[0], value, path)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise SnapshotIntegrityError(f"{path} is not a list", errors={path: "list"})
        return tuple(
            _from_jsonable(item_type, item, f"{path}[{i}]") for i, item in enumerate(value)
        )
    if value is None:
        raise SnapshotIntegrityError(f"{path} is missing", errors={path: "required"})
    try:
        if tp is Decimal:
            if not isinstance(value, str):
                raise TypeError(path)
            return Decimal(value)
        if tp is date:
            return date.fromisoformat(value)
        if tp is bytes:
            return base64.b64decode(value, validate=True)
        if isinstance(tp, type) and issubclass(tp, StrEnum):
            return tp(value)
        if tp in (str, int, bool):
            if type(value) is not tp:
                raise TypeError(path)
            return value
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise SnapshotIntegrityError(
            f"{path} has an invalid value", errors={path: "invalid"}
        ) from exc
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SnapshotIntegrityError(f"{path} is not an object", errors={path: "object"})
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if not f.init or f.name not in value:
                continue
            kwargs[f.name] = _from_jsonable(hints[f.name], value[f.name], f"{path}.{f.name}")
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise SnapshotIntegrityError(
                f"{path} lacks fields", errors={path: "incomplete"}
            ) from exc
    raise TypeError(f"unsupported type {tp!r} at {path}")


def snapshot_from_json(data: bytes) -> InvoiceSnapshot:
    """Read a snapshot written by :func:`canonical_json`; the totals are recomputed and
    must equal the stored ones (else :class:`SnapshotIntegrityError`)."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotIntegrityError("not JSON", errors={"$": "json"}) from exc
    if not isinstance(raw, dict) or raw.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotIntegrityError(
            f"not a {SNAPSHOT_FORMAT} document", errors={"format": "unknown"}
        )
    snapshot: InvoiceSnapshot = _from_jsonable(InvoiceSnapshot, raw, "$")
    if _jsonable(snapshot.totals) != raw.get("totals"):
        raise SnapshotIntegrityError(
            "the stored totals differ from the totals recomputed from the lines",
            errors={"totals": "mismatch"},
        )
    return snapshot
