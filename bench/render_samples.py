"""Render the sample invoices shown in ``docs/invoices.md``.

Run from the repository root::

    .venv/bin/python bench/render_samples.py

For every example of :mod:`billing.documents.examples` it writes ``docs/samples/<case>.pdf``
(PDF/A-3b with ``factur-x.xml`` inside), ``docs/samples/<case>.xml`` (the same XML) and
``docs/samples/<case>.png`` (page 1 at 80 dpi, by ``pdftoppm`` from poppler-utils:
``apt-get install -y poppler-utils``). Rendering is deterministic, so re-running it changes
no file unless the documents changed. The XRechnung variant of the domestic invoice goes to
``docs/samples/domestic.xrechnung.xml``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLES = REPO / "docs" / "samples"
DPI = "80"


def main() -> int:
    from billing.documents.cii import CiiProfile, render_xml
    from billing.documents.examples import ExampleCase, all_examples
    from billing.documents.pdf import render_invoice

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("pdftoppm not found: apt-get install -y poppler-utils", file=sys.stderr)
        return 1
    SAMPLES.mkdir(parents=True, exist_ok=True)
    for case, snapshot in all_examples().items():
        rendered = render_invoice(snapshot)
        (SAMPLES / f"{case}.pdf").write_bytes(rendered.pdf)
        (SAMPLES / f"{case}.xml").write_bytes(rendered.xml)
        with tempfile.TemporaryDirectory() as tmp:
            stem = Path(tmp) / case.value
            pdf = SAMPLES / f"{case}.pdf"
            options = ["-png", "-r", DPI, "-f", "1", "-l", "1", "-singlefile"]
            subprocess.run([pdftoppm, *options, str(pdf), str(stem)], check=True)
            shutil.move(f"{stem}.png", SAMPLES / f"{case}.png")
        size = len(rendered.pdf)
        print(f"docs/samples/{case}.pdf  {size:>7,} bytes  snapshot {rendered.content_sha256[:12]}")
    domestic = all_examples()[ExampleCase.DOMESTIC]
    (SAMPLES / "domestic.xrechnung.xml").write_bytes(render_xml(domestic, CiiProfile.XRECHNUNG))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
