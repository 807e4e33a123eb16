"""Pictures of the metrics: the MRR over time, the movements waterfall and the cohort heat map.

Rendered with matplotlib's Agg canvas through the object API (no pyplot, no global figure
state, so concurrent requests do not share a figure). SVG output is deterministic: a fixed
`svg.hashsalt` for the ids, and no date in the metadata, so the same numbers give the same
bytes and tests can compare them. Amounts become floats only here, as plot coordinates; every
number a person reads is formatted from the exact `Decimal`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from billing.metrics.cohorts import Cohort
from billing.metrics.money import to_decimal
from billing.metrics.months import MonthSummary
from billing.metrics.movements import Kind

FORMATS = ("svg", "png")
MIME = {"svg": "image/svg+xml", "png": "image/png"}
COLORS = {
    Kind.NEW: "#2e7d32",
    Kind.EXPANSION: "#66bb6a",
    Kind.REACTIVATION: "#26a69a",
    Kind.CONTRACTION: "#ef6c00",
    Kind.CHURN: "#c62828",
}
LEVEL = "#1565c0"
# the order in which a month's movements are stacked in the waterfall: gains, then losses
WATERFALL_ORDER = (Kind.NEW, Kind.EXPANSION, Kind.REACTIVATION, Kind.CONTRACTION, Kind.CHURN)
_RC: Any = {
    "svg.hashsalt": "abowerk-metrics",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _render(figure: Any, fmt: str) -> bytes:
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}")
    buffer = io.BytesIO()
    metadata: dict[str, Any] = (
        {"Date": None, "Creator": "abowerk"} if fmt == "svg" else {"Software": "abowerk"}
    )
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format=fmt, metadata=metadata, bbox_inches="tight")
    return buffer.getvalue()


def _major(amount: int, currency: str) -> float:
    return float(to_decimal(amount, currency))  # a plot coordinate, never money again


def _amount_label(amount: int, currency: str) -> str:
    value = to_decimal(amount, currency)
    return f"{value:,} {currency}"


def _draw(fmt: str, width: float, height: float, paint: Any) -> bytes:
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = _figure(width, height)
        paint(figure)
        return _render(figure, fmt)


def mrr_chart(summaries: Sequence[MonthSummary], fmt: str = "svg") -> bytes:
    """Ending MRR per month as a line with markers, one currency."""
    currency = summaries[0].currency if summaries else ""
    labels = [str(s.month) for s in summaries]

    def paint(figure: Any) -> None:
        ax = figure.add_subplot()
        values = [_major(s.ending_mrr, currency) for s in summaries]
        ax.plot(labels, values, marker="o", color=LEVEL, linewidth=2)
        ax.fill_between(labels, values, color=LEVEL, alpha=0.08)
        ax.set_title(f"MRR at month end ({currency})")
        ax.set_ylabel(currency)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelrotation=45)
        if summaries:
            last = summaries[-1]
            ax.annotate(
                _amount_label(last.ending_mrr, currency),
                (labels[-1], values[-1]),
                textcoords="offset points",
                xytext=(0, 8),
                ha="right",
            )

    return _draw(fmt, 8, 4, paint)


def waterfall_chart(summaries: Sequence[MonthSummary], fmt: str = "svg") -> bytes:
    """Per month, the MRR stepping from its start through each movement to its end: a
    floating bar per movement kind, and the level at each month's end as a line."""
    currency = summaries[0].currency if summaries else ""

    def paint(figure: Any) -> None:
        ax = figure.add_subplot()
        width = 0.8 / len(WATERFALL_ORDER)
        seen: set[Kind] = set()
        top = 0
        for index, s in enumerate(summaries):
            level = s.starting_mrr
            for k, kind in enumerate(WATERFALL_ORDER):
                amount = s.movements[kind]
                x = index - 0.4 + width * (k + 0.5)
                if amount:
                    ax.bar(
                        x,
                        _major(amount, currency),
                        width=width,
                        bottom=_major(level, currency),
                        color=COLORS[kind],
                        label=kind.value if kind not in seen else None,
                    )
                    seen.add(kind)
                level += amount
                top = max(top, level, level - amount)
        if summaries:
            ax.hlines(
                [_major(s.ending_mrr, currency) for s in summaries],
                [i - 0.45 for i in range(len(summaries))],
                [i + 0.45 for i in range(len(summaries))],
                color=LEVEL,
                linewidth=1.5,
                label="ending MRR",
            )
        ax.set_ylim(bottom=0, top=_major(top, currency) * 1.15 or 1)
        ax.set_xticks(range(len(summaries)), [str(s.month) for s in summaries], rotation=45)
        ax.set_title(f"MRR movements per month ({currency})")
        ax.set_ylabel(currency)
        ax.grid(axis="y", alpha=0.3)
        if summaries:
            ax.legend(loc="upper left", fontsize=8, frameon=False)

    return _draw(fmt, 10, 4.5, paint)


def cohort_heatmap(
    cohorts: Sequence[Cohort], measure: str = "customers", fmt: str = "svg"
) -> bytes:
    """Rows: cohorts; columns: months since the cohort month; colour and label: the share
    retained (`customers` or `mrr`)."""
    ages = max((len(c.cells) for c in cohorts), default=0)

    def share(value: Decimal | None) -> float:
        return float("nan") if value is None else float(value)

    def paint(figure: Any) -> None:
        ax = figure.add_subplot()
        grid: list[list[float]] = []
        for cohort in cohorts:
            row = [float("nan")] * ages
            for cell in cohort.cells:
                value = cell.customer_retention if measure == "customers" else cell.mrr_retention
                row[cell.age] = share(value)
                if value is not None:
                    ax.text(
                        cell.age,
                        len(grid),
                        f"{(value * 100).quantize(Decimal(1))}%",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if value > Decimal("0.6") else "black",
                    )
            grid.append(row)
        if grid:
            image = ax.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
            figure.colorbar(image, ax=ax, fraction=0.03)
        ax.set_yticks(
            range(len(cohorts)), [f"{c.cohort} ({c.customers}, {c.currency})" for c in cohorts]
        )
        ax.set_xticks(range(ages), [str(a) for a in range(ages)])
        ax.set_xlabel("months since the cohort month")
        ax.set_title(f"Cohort retention ({'customers' if measure == 'customers' else 'MRR'})")

    return _draw(fmt, 9, max(2.5, 0.4 * len(cohorts) + 1.5), paint)
