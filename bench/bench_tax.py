"""Benchmark: VAT decisions per second on one core, for a typical mix of cases.

Run from the repository root::

    .venv/bin/python bench/bench_tax.py [--decisions 300000] [--repeat 5] [--no-write]

It pins itself to one CPU (where the OS allows), decides a pre-built mix of cases
(domestic, reverse charge, OSS, below the 10,000 EUR threshold, out of scope, special
territories, Kleinunternehmer in both regimes, evidence-based location, foreign currency),
prints the results and writes them into the ``## Tax decisions`` section of
``docs/benchmarks.md`` (other sections are left alone). A baseline of one bare Decimal
multiplication and rounding per case is measured in the same run, since absolute figures
drift between machines. Exit code 1 when the median is below the 100,000 decisions/s
target, so tax never limits a billing run.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Tax decisions"
TARGET = 100_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def build_cases(count: int, seed: int = 20261121) -> list[tuple[Any, ...]]:
    """A deterministic mix of ``count`` decision inputs, weighted like a billing run."""
    from tax.model import (
        Counters,
        CustomerFacts,
        EvidenceKind,
        LocationEvidence,
        SellerProfile,
        Supply,
        VatIdStatus,
    )

    d = Decimal
    rng = random.Random(seed)
    regular = SellerProfile("DE", vat_id="DE811907980", oss_registered=True)
    small_eu = SellerProfile("DE", vat_id="DE811907980")
    ku = SellerProfile("DE", tax_number="21/815/08150", kleinunternehmer=True)
    above = Counters(eu_b2c_previous_year=d("25000.00"), eu_b2c_current_year=d("18000.00"))
    below = Counters(eu_b2c_previous_year=d("3000.00"), eu_b2c_current_year=d("4000.00"))
    ku_counters = Counters(
        turnover_previous_year=d("20000.00"),
        turnover_current_year=d("60000.00"),
        eu_b2c_current_year=d("3000.00"),
    )
    ku_old = Counters(turnover_previous_year=d("21000.00"), forecast_current_year=d("40000"))
    b2b_at = CustomerFacts(
        "AT", is_business=True, vat_id="ATU13585627", vat_id_status=VatIdStatus.VALID
    )
    b2b_de = CustomerFacts(
        "DE", is_business=True, vat_id="DE136695976", vat_id_status=VatIdStatus.VALID
    )
    two_items = (
        LocationEvidence(EvidenceKind.BILLING_ADDRESS, "FR"),
        LocationEvidence(EvidenceKind.BANK, "FR", third_party=True),
    )
    eu = ["AT", "BE", "ES", "FI", "FR", "GR", "IE", "IT", "NL", "PL", "RO", "SE", "SK"]
    # (weight, seller, counters, customer factory, currency)
    kinds: list[tuple[int, Any, Any, Callable[[], Any], str]] = [
        (30, regular, above, lambda: CustomerFacts("DE"), "EUR"),
        (10, regular, above, lambda: b2b_de, "EUR"),
        (15, regular, above, lambda: b2b_at, "EUR"),
        (20, regular, above, lambda: CustomerFacts(rng.choice(eu)), "EUR"),
        (5, regular, above, lambda: CustomerFacts(None, evidence=two_items), "EUR"),
        (4, small_eu, below, lambda: CustomerFacts(rng.choice(eu)), "EUR"),
        (2, small_eu, above, lambda: CustomerFacts(rng.choice(eu)), "EUR"),
        (5, regular, above, lambda: CustomerFacts(rng.choice(["US", "CH", "GB", "NO"])), "USD"),
        (1, regular, above, lambda: CustomerFacts("ES", postal_code="35001"), "EUR"),
        (6, ku, ku_counters, lambda: CustomerFacts("DE"), "EUR"),
        (2, ku, ku_counters, lambda: CustomerFacts("FR"), "EUR"),
        (2, ku, ku_old, lambda: CustomerFacts("DE"), "EUR"),
    ]
    weights = [kind[0] for kind in kinds]
    start = date(2025, 1, 1)
    cases = []
    for _ in range(count):
        _, seller, counters, customer, currency = rng.choices(kinds, weights)[0]
        on = start + timedelta(days=rng.randrange(700))
        if counters is ku_old:
            on = date(2024, rng.randrange(1, 13), 15)
        net = d(rng.randrange(100, 500_000)) / 100
        supply = Supply(on, net, currency, net_eur=net if currency != "EUR" else None)
        cases.append((seller, counters, customer(), supply))
    return cases


def _time(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(decisions: int, repeat: int) -> dict[str, Any]:
    """Measure and return the figures."""
    from tax.decide import decide

    cases = build_cases(min(decisions, 20_000))
    mix = Counter(decide(*case).treatment.value for case in cases)
    batch = (cases * (decisions // len(cases) + 1))[:decisions]

    def decide_all() -> None:
        for seller, counters, customer, supply in batch:
            decide(seller, counters, customer, supply)

    quantum = Decimal("0.01")
    fraction = Decimal("0.19")
    nets = [case[3].net for case in batch]

    def baseline() -> None:
        for net in nets:
            (net * fraction).quantize(quantum, ROUND_HALF_UP)

    decide_all()  # warm-up: imports, caches
    seconds = [_time(decide_all) for _ in range(repeat)]
    base = [_time(baseline) for _ in range(repeat)]
    rates = sorted(decisions / s for s in seconds)
    return {
        "decisions": decisions,
        "repeat": repeat,
        "median": statistics.median(rates),
        "best": rates[-1],
        "worst": rates[0],
        "baseline": statistics.median(decisions / s for s in base),
        "mix": dict(mix.most_common()),
        "mix_total": sum(mix.values()),
    }


def render(result: dict[str, Any], pinned: str) -> str:
    """The ``## Tax decisions`` section."""
    verdict = "meets" if result["median"] >= TARGET else "**misses**"
    mix = ", ".join(
        f"{name} {100 * count / result['mix_total']:.0f} %" for name, count in result["mix"].items()
    )
    return "\n".join(
        [
            SECTION,
            "",
            f"Measured {datetime.now(UTC).date().isoformat()} by `bench/bench_tax.py` on "
            f"{_cpu_model()} ({os.cpu_count()} cores, {pinned}), Python "
            f"{platform.python_version()}.",
            "",
            "| measure | per second | µs each |",
            "|---|---|---|",
            f"| `tax.decide` median of {result['repeat']} runs × {result['decisions']:,} "
            f"| {result['median']:,.0f} | {1e6 / result['median']:.2f} |",
            f"| `tax.decide` best / worst run | {result['best']:,.0f} / {result['worst']:,.0f} | |",
            "| baseline: one `Decimal` multiply + `quantize` "
            f"| {result['baseline']:,.0f} | {1e6 / result['baseline']:.2f} |",
            "",
            f"Target {TARGET:,} decisions/s on one core: {verdict}. Mix of treatments: {mix}.",
            "",
        ]
    )


def write_section(section: str, path: Path = DOCS) -> None:
    """Replace (or append) the ``## Tax decisions`` section, keeping all others."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        body = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        body = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


def main() -> int:
    """Run the benchmark, print it, update docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # a plain script: make the repository importable
    pinned = _pin_to_one_core()
    result = run(args.decisions, args.repeat)
    section = render(result, pinned)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"updated {DOCS.relative_to(REPO)}")
    return 0 if result["median"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
