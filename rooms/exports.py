"""The audit trail as CSV, streamed a chunk of rows at a time (constant memory)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet

AUDIT_COLUMNS = ["created_at", "room_code", "action", "actor", "target", "ip", "details"]
CHUNK_ROWS = 500
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def audit_csv_chunks(entries: QuerySet) -> Iterator[str]:
    """Yield the header and then the entries of ``entries`` as CSV text, in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_COLUMNS)
    rows = entries.values_list("created_at", "room_code", "action", "actor_name", "target_name", "ip", "details")
    for count, (created_at, room_code, action, actor, target, ip, details) in enumerate(rows.iterator(CHUNK_ROWS), 1):
        writer.writerow(
            [
                created_at.isoformat(),
                _cell(room_code),
                action,
                _cell(actor),
                _cell(target),
                ip or "",
                _cell(json.dumps(details, sort_keys=True, separators=(",", ":")) if details else ""),
            ]
        )
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
