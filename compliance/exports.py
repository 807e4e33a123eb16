"""Building the export ZIP (access, Art. 15; portability, Art. 20). Pure apart from the bytes.

Layout: `manifest.json` (format, schema version, generation time, request, controller and
processor, the subject's id, and per category its file, record count, purposes and retention),
one JSON file per category of `compliance.export_schemas.CATEGORIES` (an empty list when the
person has nothing in it), and the providers' files (invoice PDFs and XML) under their own
folders. Every category file is dumped through its schema, so only declared fields leave.

The ZIP is deterministic for the same input: fixed order, fixed timestamps (the generation
time), sorted manifest entries, JSON with two-space indentation and UTF-8.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compliance.export_schemas import CATEGORIES, FORMAT, SCHEMA_VERSION, Manifest
from compliance.registry import ExportPart, Provider

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuiltExport:
    content: bytes
    sha256: str
    manifest: dict[str, Any]


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def build_export(
    parts: Sequence[tuple[Provider, ExportPart]],
    *,
    request_id: str,
    request_kind: str,
    generated_at: datetime,
    controller: str,
    processor: str,
    subject: dict[str, Any],
) -> BuiltExport:
    records: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CATEGORIES}
    purposes: dict[str, list[str]] = {c.name: [] for c in CATEGORIES}
    retention: dict[str, list[str]] = {c.name: [] for c in CATEGORIES}
    files: dict[str, bytes] = {}
    for provider, part in parts:
        for category, rows in part.records.items():
            if category not in records:
                raise ValueError(f"provider {provider.name} exports unknown category {category}")
            records[category].extend(rows)
        for name in provider.categories:
            if name in purposes and provider.purpose not in purposes[name]:
                purposes[name].append(provider.purpose)
                retention[name].append(provider.retention)
        for file in part.files:
            reserved = file.path == MANIFEST or file.path in {c.file for c in CATEGORIES}
            if reserved or file.path in files or file.path.startswith("/") or ".." in file.path:
                raise ValueError(f"provider {provider.name} exports a bad file path {file.path}")
            files[file.path] = file.content

    entries: list[tuple[str, bytes]] = []
    manifest_categories = []
    for cat in CATEGORIES:
        dumped = cat.schema(many=True).dump(records[cat.name])
        # what leaves must load back through the same schema: a provider that forgets a
        # required field fails here, not in the person's hands
        cat.schema(many=True).load(dumped)
        entries.append((cat.file, _json(dumped)))
        manifest_categories.append(
            {
                "name": cat.name,
                "title": cat.title,
                "file": cat.file,
                "records": len(dumped),
                "purposes": purposes[cat.name],
                "retention": retention[cat.name],
            }
        )
    entries.extend(sorted(files.items()))
    manifest = Manifest().dump(
        {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "generated_at": generated_at,
            "request_id": request_id,
            "request_kind": request_kind,
            "controller": controller,
            "processor": processor,
            "subject": subject,
            "categories": manifest_categories,
            "files": [
                {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                for path, data in entries
            ],
        }
    )
    buffer = io.BytesIO()
    stamp = generated_at.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in [(MANIFEST, _json(manifest)), *entries]:
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, data)
    content = buffer.getvalue()
    return BuiltExport(content, hashlib.sha256(content).hexdigest(), manifest)
