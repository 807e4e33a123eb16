"""Invoice number patterns: a small template language, pure (no database).

A pattern is literal text with placeholders, e.g. ``RE-{year}-{seq:05}``:

* ``{seq}`` (required, exactly once): the running number of the series, optionally
  zero-padded to a width of 1 to 12 (``{seq:05}`` → ``00042``);
* ``{year}`` (four digits) and ``{month}`` (two digits) of the issue date, optional.

Literal text is limited to letters, digits and ``- _ / .`` so a number is safe in a file
name, a payment reference and an XML element. The rendered number is at most 64 characters.
A pattern may not start with ``TEST-``: test-mode numbers carry that prefix, so live and
test numbers can never collide.

§ 14 Abs. 4 Nr. 4 UStG asks for a unique number from one or more series; a series may
restart every year (UStAE 14.5 Abs. 10). The *bucket* of a number is the pattern with the
date placeholders filled in and ``{seq}`` left open (``RE-2026-{seq}``): each bucket counts
on its own, so ``{year}`` in the pattern restarts the count every year, ``{month}`` every
month, and a pattern without either counts for ever. Changing only the padding keeps the
bucket (and the count); changing the literal text starts a new bucket at 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

MAX_NUMBER_LENGTH = 64
RESERVED_PREFIX = "TEST-"  # test-mode numbers carry it (billing.invoices.counters)
_TOKEN = re.compile(r"\{([a-z]+)(?::([^{}]*))?\}")
_LITERAL = re.compile(r"[A-Za-z0-9\-_/.]*")
_SEQ_SPEC = re.compile(r"0?([1-9]|1[0-2])d?")
_FIELDS = ("year", "month", "seq")
_SEQ_OPEN = "{seq}"


class PatternError(ValueError):
    """The pattern is not valid; the message says why (shown to the API client)."""


@dataclass(frozen=True, slots=True)
class NumberPattern:
    """A parsed pattern: alternating literal parts and placeholders."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, None) or (field, seq width or "")

    def bucket(self, issued_on: date) -> str:
        """The pattern with the date filled in and ``{seq}`` left open."""
        return self._render(issued_on, None)

    def render(self, issued_on: date, seq: int) -> str:
        """The number ``seq`` of the bucket of ``issued_on``."""
        if seq < 1:
            raise ValueError("sequence numbers start at 1")
        return self._render(issued_on, seq)

    def _render(self, issued_on: date, seq: int | None) -> str:
        out = []
        for kind, spec in self.parts:
            if spec is None:
                out.append(kind)
            elif kind == "year":
                out.append(f"{issued_on.year:04d}")
            elif kind == "month":
                out.append(f"{issued_on.month:02d}")
            elif seq is None:
                out.append(_SEQ_OPEN)
            else:
                width = int(spec) if spec else 1
                out.append(str(seq).zfill(width))
        return "".join(out)


def parse_pattern(text: str) -> NumberPattern:
    """Parse and check ``text``; raises :class:`PatternError`."""
    parts: list[tuple[str, str | None]] = []
    position = 0
    seen: set[str] = set()
    for match in _TOKEN.finditer(text):
        literal = text[position : match.start()]
        _check_literal(literal)
        if literal:
            parts.append((literal, None))
        name = match.group(1)
        if name in seen:
            raise PatternError(f"{{{name}}} appears more than once")
        seen.add(name)
        parts.append(_placeholder(name, match.group(2)))
        position = match.end()
    tail = text[position:]
    _check_literal(tail)
    if tail:
        parts.append((tail, None))
    if "seq" not in seen:
        raise PatternError("the pattern needs the running number {seq}")
    if text.upper().startswith(RESERVED_PREFIX):
        raise PatternError(f"{RESERVED_PREFIX} is reserved for test-mode numbers")
    pattern = NumberPattern(text, tuple(parts))
    longest = pattern.render(date(9999, 12, 31), 10**12 - 1)
    if len(longest) > MAX_NUMBER_LENGTH:
        raise PatternError(f"numbers would be longer than {MAX_NUMBER_LENGTH} characters")
    return pattern


def _placeholder(name: str, spec: str | None) -> tuple[str, str]:
    if name not in _FIELDS:
        raise PatternError(f"unknown placeholder {{{name}}}; use {{year}}, {{month}}, {{seq}}")
    if name != "seq":
        if spec is not None:
            raise PatternError(f"{{{name}}} takes no format")
        return (name, "")
    if not spec:
        return ("seq", "")
    found = _SEQ_SPEC.fullmatch(spec)
    if found is None:
        raise PatternError("{seq} takes a zero-padding width of 1 to 12, e.g. {seq:05}")
    return ("seq", found.group(1))


def _check_literal(literal: str) -> None:
    if "{" in literal or "}" in literal:
        raise PatternError("unbalanced brace in the pattern")
    if not _LITERAL.fullmatch(literal):
        raise PatternError("literal text may contain letters, digits and - _ / . only")
