"""The dunning e-mails, in German and English, as pure text (no database, no clock).

Three kinds, one per moment of a case:
- `payment_failed`: the first collection failed; when the next attempt is;
- `retry_failed`: a retry failed, the reminder before the next one;
- `final_notice`: the last retry failed; what happens now (the subscription ends, or the
  invoice stays owed and must be paid by transfer).

The language follows the customer's locale (`de-*` German, everything else English); amounts
and dates use the invoice documents' formats (`billing.documents.wording`). The texts name the
seller, since the tenant is the one asking for its money (abowerk only sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from billing.documents.wording import day, money
from billing.dunning.schedule import CANCEL

PAYMENT_FAILED = "dunning.payment_failed"
RETRY_FAILED = "dunning.retry_failed"
FINAL_NOTICE = "dunning.final_notice"
KINDS = (PAYMENT_FAILED, RETRY_FAILED, FINAL_NOTICE)


def language_of(locale: str | None) -> str:
    """`de` for a German locale (`de`, `de-DE`, `de_AT`, …), else `en`."""
    return "de" if (locale or "").lower().replace("_", "-").split("-")[0] == "de" else "en"


@dataclass(frozen=True)
class MailFacts:
    language: str
    customer_name: str
    seller_name: str
    invoice_number: str
    amount_minor: int
    currency: str
    next_attempt_on: date | None = None  # payment_failed, retry_failed
    attempt: int = 0  # the retry that failed (retry_failed, final_notice)
    attempts: int = 0  # retries in the schedule
    final_action: str | None = None  # final_notice


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str


def render(kind: str, facts: MailFacts) -> Mail:
    if kind not in KINDS:
        raise ValueError(f"unknown dunning mail {kind!r}")
    lang = facts.language if facts.language in ("de", "en") else "en"
    amount = money(facts.amount_minor, facts.currency, lang)
    nxt = day(facts.next_attempt_on, lang) if facts.next_attempt_on else None
    if lang == "de":
        return _german(kind, facts, amount, nxt)
    return _english(kind, facts, amount, nxt)


def _german(kind: str, f: MailFacts, amount: str, nxt: str | None) -> Mail:
    greeting = f"Guten Tag {f.customer_name},"
    closing = f"Mit freundlichen Grüßen\n{f.seller_name}"
    if kind == PAYMENT_FAILED:
        subject = f"Zahlung fehlgeschlagen: Rechnung {f.invoice_number}"
        body = (
            f"die Zahlung von {amount} für die Rechnung {f.invoice_number} konnte nicht "
            "eingezogen werden.\n\n"
            f"Wir versuchen es am {nxt} erneut. Bitte prüfen Sie bis dahin Ihre "
            "Zahlungsmethode."
        )
    elif kind == RETRY_FAILED:
        subject = f"Erinnerung: Rechnung {f.invoice_number} ist noch offen"
        body = (
            f"auch der {f.attempt}. von {f.attempts} Versuchen, {amount} für die Rechnung "
            f"{f.invoice_number} einzuziehen, ist fehlgeschlagen.\n\n"
            f"Der nächste Versuch folgt am {nxt}. Bitte aktualisieren Sie Ihre "
            "Zahlungsmethode, damit Ihr Abonnement weiterläuft."
        )
    else:
        subject = f"Letzte Mahnung: Rechnung {f.invoice_number}"
        outcome = (
            "Ihr Abonnement wurde deshalb beendet."
            if f.final_action == CANCEL
            else "Wir ziehen den Betrag nicht mehr automatisch ein. Bitte überweisen Sie ihn "
            "unter Angabe der Rechnungsnummer."
        )
        body = (
            f"der letzte Versuch, {amount} für die Rechnung {f.invoice_number} einzuziehen, "
            f"ist fehlgeschlagen. {outcome}\n\n"
            "Der Rechnungsbetrag bleibt fällig."
        )
    return Mail(subject, f"{greeting}\n\n{body}\n\n{closing}\n")


def _english(kind: str, f: MailFacts, amount: str, nxt: str | None) -> Mail:
    greeting = f"Dear {f.customer_name},"
    closing = f"Kind regards\n{f.seller_name}"
    if kind == PAYMENT_FAILED:
        subject = f"Payment failed: invoice {f.invoice_number}"
        body = (
            f"we could not collect the payment of {amount} for invoice {f.invoice_number}.\n\n"
            f"We will try again on {nxt}. Please check your payment method before then."
        )
    elif kind == RETRY_FAILED:
        subject = f"Reminder: invoice {f.invoice_number} is still unpaid"
        body = (
            f"attempt {f.attempt} of {f.attempts} to collect {amount} for invoice "
            f"{f.invoice_number} failed as well.\n\n"
            f"The next attempt is on {nxt}. Please update your payment method to keep your "
            "subscription running."
        )
    else:
        subject = f"Final notice: invoice {f.invoice_number}"
        outcome = (
            "Your subscription has therefore been cancelled."
            if f.final_action == CANCEL
            else "We will not collect it automatically any more. Please pay it by bank "
            "transfer, quoting the invoice number."
        )
        body = (
            f"the last attempt to collect {amount} for invoice {f.invoice_number} failed. "
            f"{outcome}\n\n"
            "The invoice amount remains due."
        )
    return Mail(subject, f"{greeting}\n\n{body}\n\n{closing}\n")
