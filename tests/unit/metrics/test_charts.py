"""The pictures: deterministic SVG (same numbers, same bytes) and valid PNG."""

from __future__ import annotations

from billing.metrics.charts import cohort_heatmap, mrr_chart, waterfall_chart
from billing.metrics.cohorts import CohortMonthAggregate, cohort_table
from billing.metrics.months import Month, MonthAggregate, month_range, summarize_months
from billing.metrics.movements import Kind

MONTHS = month_range(Month(2025, 1), Month(2025, 4))
AGGREGATES = {
    Month(2025, 1): MonthAggregate(Month(2025, 1), {Kind.NEW: 6800}, {Kind.NEW: 2}, 0, 6800),
    Month(2025, 2): MonthAggregate(
        Month(2025, 2), {Kind.EXPANSION: 5000, Kind.CONTRACTION: -1000}, {}, 0, 4000
    ),
    Month(2025, 3): MonthAggregate(Month(2025, 3), {Kind.CHURN: -1900}, {Kind.CHURN: 1}, 1, -1900),
    Month(2025, 4): MonthAggregate(
        Month(2025, 4), {Kind.REACTIVATION: 1900}, {Kind.REACTIVATION: 1}, 0, 1900
    ),
}
LINES = summarize_months("EUR", MONTHS, opening_mrr=0, opening_customers=0, aggregates=AGGREGATES)


def test_svg_is_identical_when_rendered_twice() -> None:
    for draw in (mrr_chart, waterfall_chart):
        first = draw(LINES, "svg")
        assert first == draw(LINES, "svg")
        text = first.decode()
        assert text.startswith("<?xml") and "<svg" in text
        assert "<dc:date>" not in text  # no timestamp in the metadata


def test_png_is_a_png_when_asked_for() -> None:
    assert mrr_chart(LINES, "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_cohort_heatmap_renders_when_cohorts_exist_or_not() -> None:
    table = cohort_table(
        [
            CohortMonthAggregate("EUR", Month(2025, 1), Month(2025, 1), 6800, 2, 2, 6800),
            CohortMonthAggregate("EUR", Month(2025, 1), Month(2025, 3), -1900, -1),
        ],
        Month(2025, 1),
        Month(2025, 4),
    )
    svg = cohort_heatmap(table, "customers", "svg")
    assert svg == cohort_heatmap(table, "customers", "svg")
    assert cohort_heatmap(table, "mrr", "png").startswith(b"\x89PNG")
    assert cohort_heatmap([], "customers", "svg").startswith(b"<?xml")
    assert waterfall_chart([], "svg").startswith(b"<?xml")
