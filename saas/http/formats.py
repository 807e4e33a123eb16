"""Responses in more than one media type: CSV downloads and the OpenAPI note that says so.

Reports answer JSON by default and CSV (or a picture) on request. The OpenAPI document must
list every content type a 200 can carry, or clients and the schemathesis run in
tests/reliability would treat a CSV answer as undocumented.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

TEXT = {"schema": {"type": "string"}}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def csv_download(body: str, name: str) -> Response:
    """``body`` as a CSV attachment named ``name``.csv."""
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def also_answers(blp: Blueprint, component: str, others: dict[str, dict[str, Any]]) -> Any:
    """Document a 200 of schema ``component`` in JSON plus the media types of ``others``."""
    return blp.doc(
        responses={
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}},
                    **others,
                },
            }
        }
    )
