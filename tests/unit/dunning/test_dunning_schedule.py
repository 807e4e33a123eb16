"""The dunning rules that need no database: the retry schedule, its validation, the backoffs
and the e-mail texts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.dunning import mails
from billing.dunning.schedule import (
    DEFAULT_RETRY_DAYS,
    retry_at,
    retry_times,
    unavailable_backoff,
    validate_retry_days,
)
from saas.mail.sender import backoff

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "day", "expected"),
    [
        (utc(2026, 3, 2, 9, 0), 1, utc(2026, 3, 3, 9, 0)),  # winter: 10:00 Berlin
        (utc(2026, 3, 2, 9, 0), 7, utc(2026, 3, 9, 9, 0)),
        # across the spring change (29 Mar 2026): still 10:00 local, one hour earlier in UTC
        (utc(2026, 3, 27, 9, 0), 3, utc(2026, 3, 30, 8, 0)),
        # across the autumn change (25 Oct 2026): 10:00 local, one hour later in UTC
        (utc(2026, 10, 23, 8, 0), 5, utc(2026, 10, 28, 9, 0)),
        # a failure at 02:30 local on the day before the gap: the retry day has no 02:30
        (utc(2026, 3, 28, 1, 30), 1, utc(2026, 3, 29, 1, 30)),
        # month and year ends
        (utc(2026, 12, 30, 23, 30), 3, utc(2027, 1, 2, 23, 30)),
        (utc(2028, 2, 27, 12, 0), 1, utc(2028, 2, 28, 12, 0)),
        (utc(2028, 2, 27, 12, 0), 2, utc(2028, 2, 29, 12, 0)),  # leap day
    ],
)
def test_retry_falls_on_the_same_local_time_when_days_pass(
    first: datetime, day: int, expected: datetime
) -> None:
    at = retry_at(first, day, BERLIN)
    assert at == expected
    assert at.tzinfo is not None


def test_default_schedule_is_days_1_3_5_7_when_tenant_sets_none() -> None:
    first = utc(2026, 3, 2, 9, 0)
    assert DEFAULT_RETRY_DAYS == (1, 3, 5, 7)
    assert retry_times(first, DEFAULT_RETRY_DAYS, BERLIN) == [
        first + timedelta(days=d) for d in (1, 3, 5, 7)
    ]


def test_retry_is_refused_when_the_first_failure_is_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retry_at(datetime(2026, 3, 2, 9, 0), 1, BERLIN)  # noqa: DTZ001  (the point of the test)


@pytest.mark.parametrize(
    ("days", "problems"),
    [
        ([1, 3, 5, 7], []),
        ([1], []),
        ([60], []),
        (list(range(1, 11)), []),
        ([], ["between 1 and 10 retries"]),
        (list(range(1, 12)), ["between 1 and 10 retries"]),
        ([0, 3], ["each between 1 and 60 days after the first failure"]),
        ([1, 61], ["each between 1 and 60 days after the first failure"]),
        ([3, 1], ["strictly increasing"]),
        ([1, 1], ["strictly increasing"]),
        ([1, 2.5], ["whole numbers of days"]),
        ([True, 2], ["whole numbers of days"]),
    ],
)
def test_schedule_is_validated_when_set(days: list[int], problems: list[str]) -> None:
    assert validate_retry_days(days) == problems


def test_retry_times_refuse_an_invalid_schedule_when_asked() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        retry_times(utc(2026, 1, 1), [3, 1], BERLIN)


@pytest.mark.parametrize(
    ("deferrals", "wait"),
    [(0, 15), (1, 30), (2, 60), (3, 120), (4, 240), (5, 360), (50, 360)],
)
def test_unavailable_provider_backs_off_when_retries_are_deferred(
    deferrals: int, wait: int
) -> None:
    assert unavailable_backoff(deferrals) == timedelta(minutes=wait)


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [(1, 1), (2, 2), (3, 4), (6, 32), (9, 256), (10, 360), (100, 360)],
)
def test_smtp_backoff_doubles_up_to_six_hours_when_sending_fails(attempts: int, wait: int) -> None:
    assert backoff(attempts) == timedelta(minutes=wait)


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("de-DE", "de"),
        ("de", "de"),
        ("de_AT", "de"),
        ("DE-ch", "de"),
        ("en-GB", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_mail_language_follows_locale_when_rendering(locale: str | None, language: str) -> None:
    assert mails.language_of(locale) == language


FACTS = mails.MailFacts(
    language="de",
    customer_name="Erika Mustermann",
    seller_name="Muster GmbH",
    invoice_number="RE-2026-00042",
    amount_minor=123456,
    currency="EUR",
    next_attempt_on=date(2026, 3, 5),
    attempt=2,
    attempts=4,
    final_action="cancel",
)


@pytest.mark.parametrize(
    ("kind", "language", "subject", "phrases"),
    [
        (
            mails.PAYMENT_FAILED,
            "de",
            "Zahlung fehlgeschlagen: Rechnung RE-2026-00042",
            ["Guten Tag Erika Mustermann,", "1.234,56 €", "am 05.03.2026", "Muster GmbH"],
        ),
        (
            mails.PAYMENT_FAILED,
            "en",
            "Payment failed: invoice RE-2026-00042",
            ["Dear Erika Mustermann,", "€1,234.56", "on 5 Mar 2026", "Muster GmbH"],
        ),
        (
            mails.RETRY_FAILED,
            "de",
            "Erinnerung: Rechnung RE-2026-00042 ist noch offen",
            ["2. von 4", "am 05.03.2026"],
        ),
        (
            mails.RETRY_FAILED,
            "en",
            "Reminder: invoice RE-2026-00042 is still unpaid",
            ["attempt 2 of 4", "on 5 Mar 2026"],
        ),
        (
            mails.FINAL_NOTICE,
            "de",
            "Letzte Mahnung: Rechnung RE-2026-00042",
            ["Abonnement wurde deshalb beendet", "bleibt fällig"],
        ),
        (
            mails.FINAL_NOTICE,
            "en",
            "Final notice: invoice RE-2026-00042",
            ["subscription has therefore been cancelled", "remains due"],
        ),
    ],
)
def test_mail_is_rendered_in_the_customers_language_when_dunning(
    kind: str, language: str, subject: str, phrases: list[str]
) -> None:
    facts = replace(FACTS, language=language)
    mail = mails.render(kind, facts)
    assert mail.subject == subject
    for phrase in phrases:
        assert phrase in mail.text


@pytest.mark.parametrize(("language", "phrase"), [("de", "überweisen"), ("en", "bank transfer")])
def test_final_notice_asks_for_a_transfer_when_invoice_is_written_off(
    language: str, phrase: str
) -> None:
    facts = replace(FACTS, language=language, final_action="mark_uncollectible")
    assert phrase in mails.render(mails.FINAL_NOTICE, facts).text


def test_unknown_mail_kind_is_refused_when_rendering() -> None:
    with pytest.raises(ValueError, match="unknown"):
        mails.render("dunning.bogus", FACTS)
