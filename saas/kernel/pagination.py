"""Cursor pagination: newest first by time-ordered id; `starting_after` is the last id seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from sqlalchemy.orm import Session


class ListArgs(ma.Schema):
    limit = ma.fields.Integer(
        load_default=10,
        validate=ma.validate.Range(min=1, max=100),
        metadata={"description": "Page size, 1 to 100."},
    )
    starting_after = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=40),
        metadata={"description": "Cursor: the id of the last object of the previous page."},
    )


def paginate(
    session: Session,
    stmt: sa.Select[Any],
    id_column: Any,
    *,
    limit: int,
    starting_after: str | None,
) -> tuple[Sequence[Any], bool]:
    if starting_after:
        stmt = stmt.where(id_column < starting_after)
    return split_page(
        session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all(), limit
    )


def split_page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], bool]:
    """A page read with one row more than `limit` (newest first, ids below the cursor): the
    page, and whether more follow."""
    return rows[:limit], len(rows) > limit


def list_envelope(url: str, data: Sequence[Any], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": url, "data": list(data), "has_more": has_more}
