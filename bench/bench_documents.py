"""Benchmark: invoice documents per second on one core — the EN 16931 XML alone, and the
PDF/A-3b with the XML embedded.

Run from the repository root::

    .venv/bin/python bench/bench_documents.py [--xml 1500] [--pdf 150] [--repeat 3] [--no-write]

It pins itself to one CPU (where the OS allows), cycles through the example snapshots
(:mod:`billing.documents.examples`: domestic, OSS, reverse charge, Kleinunternehmer in both
regimes, out of scope, small amount, credit note, foreign currency), and measures:

* ``render_xml``: content rules + CII via drafthorse + XSD check;
* ``render_invoice``: the same XML plus HTML (Jinja2) and the PDF/A-3b (WeasyPrint);
* the first PDF of a fresh process (imports, font configuration) separately.

Results go to stdout and into the ``## Invoice documents`` section of
``docs/benchmarks.md`` (other sections are left alone). No target is enforced: the figures
size the PDF worker pool, since a billing run never waits for PDFs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Invoice documents"


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


def _cold_first_pdf() -> float:
    """Seconds for the first PDF in a fresh interpreter, imports included."""
    script = (
        "import time; t = time.perf_counter()\n"
        "from billing.documents.examples import ExampleCase, example_snapshot\n"
        "from billing.documents.pdf import render_pdf\n"
        "render_pdf(example_snapshot(ExampleCase.DOMESTIC))\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def _rate(count: int, fn: Callable[[int], None], repeat: int) -> list[float]:
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(count)
        rates.append(count / (time.perf_counter() - start))
    return rates


def run(xml_count: int, pdf_count: int, repeat: int) -> dict[str, Any]:
    from billing.documents.cii import render_xml
    from billing.documents.examples import all_examples
    from billing.documents.pdf import render_invoice

    snapshots = list(all_examples().values())
    render_invoice(snapshots[0])  # warm up: fonts, templates, drafthorse schema

    def xml(count: int) -> None:
        for i in range(count):
            render_xml(snapshots[i % len(snapshots)])

    def pdf(count: int) -> None:
        for i in range(count):
            render_invoice(snapshots[i % len(snapshots)])

    sizes = [len(render_invoice(s).pdf) for s in snapshots]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "load": load,
        "xml": _rate(xml_count, xml, repeat),
        "pdf": _rate(pdf_count, pdf, repeat),
        "xml_count": xml_count,
        "pdf_count": pdf_count,
        "repeat": repeat,
        "cold": _cold_first_pdf(),
        "kinds": len(snapshots),
        "pdf_kib": statistics.mean(sizes) / 1024,
    }


def render(result: dict[str, Any], pinned: str) -> str:
    xml, pdf = result["xml"], result["pdf"]
    xml_median, pdf_median = statistics.median(xml), statistics.median(pdf)
    today = datetime.now(UTC).date().isoformat()
    import weasyprint

    return "\n".join(
        [
            SECTION,
            "",
            f"Measured {today} by `bench/bench_documents.py` on {_cpu_model()} "
            f"({os.cpu_count()} cores, {pinned}), Python {platform.python_version()}, "
            f"WeasyPrint {weasyprint.__version__}; 1-minute load average {result['load']:.1f} "
            "at the end (other work on the machine slows every figure).",
            "",
            "| measure | documents per second | ms each |",
            "|---|---|---|",
            f"| XML only (`render_xml`: rules + CII + XSD), median of {result['repeat']} "
            f"runs × {result['xml_count']:,} | {xml_median:,.0f} | {1000 / xml_median:.2f} |",
            f"| PDF/A-3b + XML (`render_invoice`), median of {result['repeat']} runs × "
            f"{result['pdf_count']:,} | {pdf_median:,.1f} | {1000 / pdf_median:.1f} |",
            f"| PDF best / worst run | {max(pdf):,.1f} / {min(pdf):,.1f} | |",
            f"| first PDF in a fresh process (imports, fonts) | | {result['cold'] * 1000:,.0f} |",
            "",
            f"Mix: the {result['kinds']} example documents of `billing.documents.examples`, "
            f"one or two lines each; PDFs average {result['pdf_kib']:.0f} KiB (fonts subset, "
            "sRGB profile, logo, XML). The XML is "
            f"{100 * pdf_median / xml_median:.0f} % of a PDF's time; the rest is WeasyPrint "
            "(layout about three quarters, writing the PDF the remainder, by cProfile). "
            "One process renders about "
            f"{pdf_median * 3600:,.0f} PDFs per hour: size the PDF worker pool from that "
            "and keep PDFs out of the billing run's critical path (XML and numbering first).",
            "",
        ]
    )


def write_section(section: str, path: Path = DOCS) -> None:
    """Replace (or append) the ``## Invoice documents`` section, keeping all others."""
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
    path.write_text(body, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xml", type=int, default=1500, help="XML documents per run")
    parser.add_argument("--pdf", type=int, default=150, help="PDF documents per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args()
    pinned = _pin_to_one_core()
    result = run(args.xml, args.pdf, args.repeat)
    section = render(result, pinned)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"updated {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
