"""Exports of a session's metric history as CSV, JSON and NDJSON, formatted chunk by chunk.

Each format turns the row chunks of ``selectors.metric_point_chunks`` into byte chunks, so
a download of any size streams in constant memory. Values come back exactly as ingested:
numbers are written as orjson writes them, the shortest text that reads back as the same
float (``repr``'s digits, in JSON's notation: ``1e-7`` where ``repr`` says ``1e-07``), and
text stays UTF-8. A JSON export is an array of the MetricsData objects the history API
returns (``metrics.events.metrics_data``); NDJSON is one such object a line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter

import orjson

from metrics.events import decision_floats, metrics_data
from metrics.ingest import DECISION_FIELDS
from metrics.models import MetricPoint, TrainingSession
from metrics.selectors import EXTRA_PREFIX

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
}
PLAIN_FIELDS = (*MetricPoint.METRICS_DATA_FIELDS, "stream", "seq")
TEXT_FIELDS = frozenset({"algorithm", "stream"})
# Where each exported field comes from; MetricsData order (as metrics_data builds it).
ALL_COLUMNS = [*MetricPoint.METRICS_DATA_FIELDS, "extra", "decision", "stream", "seq"]
# Rows are written out in pieces of about this many bytes.
CHUNK_BYTES = 256 * 1024


def export_fields_default(training_session: TrainingSession, export_format: str) -> list[str]:
    """CSV: seed fields, stream, seq, then one ``extra.<key>`` column per custom scalar; JSON: everything."""
    if export_format == "csv":
        return [*PLAIN_FIELDS, *(f"{EXTRA_PREFIX}{key}" for key in training_session.extra_keys)]
    return []


def export_fields_allowed(training_session: TrainingSession) -> list[str]:
    return [
        *PLAIN_FIELDS,
        "extra",
        *(f"{EXTRA_PREFIX}{key}" for key in training_session.extra_keys),
        *DECISION_FIELDS,
    ]


def export_filename(
    training_session: TrainingSession, export_format: str, *, episode_from: int | None, episode_to: int | None
) -> str:
    """``<session>-metrics.<ext>``, naming the episode range when there is one.

    Session ids are restricted to letters, digits, ``_ . -`` (models), so they are safe here.
    """
    stem = f"{training_session.pk}-metrics"
    if episode_from is not None or episode_to is not None:
        first = "start" if episode_from is None else episode_from
        last = "end" if episode_to is None else episode_to
        stem += f"-episodes-{first}-{last}"
    return f"{stem}.{export_format}"


@dataclass(frozen=True)
class ExportLayout:
    """Which columns to read for the requested fields, and how a row becomes output."""

    fields: tuple[str, ...]
    """Requested fields; empty means whole MetricsData objects (JSON and NDJSON only)."""

    @property
    def columns(self) -> list[str]:
        if not self.fields:
            return ALL_COLUMNS
        needed = set()
        for name in self.fields:
            if name in PLAIN_FIELDS:
                needed.add(name)
            elif name == "extra" or name.startswith(EXTRA_PREFIX):
                needed.add("extra")
            else:
                needed.add("decision")
        return [column for column in ALL_COLUMNS if column in needed]

    @property
    def csv_text_positions(self) -> list[int]:
        """Output positions that hold free text (quoted by the CSV rules)."""
        return [i for i, name in enumerate(self.fields) if name in TEXT_FIELDS]

    @property
    def csv_has_json_cells(self) -> bool:
        """Whether some cell holds a JSON document (the whole extra, a decision field)."""
        return any(name == "extra" or name in DECISION_FIELDS for name in self.fields)

    def csv_row(self) -> Callable[[tuple], tuple]:
        """A function from a row tuple (of ``columns``) to the CSV cells of ``fields``."""
        columns = self.columns
        index = {name: i for i, name in enumerate(columns)}
        plain = [name for name in self.fields if name in PLAIN_FIELDS]
        others = [name for name in self.fields if name not in PLAIN_FIELDS]
        plain_get = _tuple_getter([index[name] for name in plain])
        if not others:
            return plain_get
        extra_at, decision_at = index.get("extra"), index.get("decision")
        if extra_at is not None and decision_at is None and "extra" not in others:
            keys = [name[len(EXTRA_PREFIX) :] for name in others]

            def other_cells(row):
                text = row[extra_at]
                extra = orjson.loads(text) if text else {}
                return [None if (value := extra.get(key)) is None else float(value) for key in keys]

        else:

            def other_cells(row):
                extra = _extra(row[extra_at]) if extra_at is not None else None
                decision = _decision(row[decision_at]) if decision_at is not None else None
                return [_json_cell(_json_value(name, extra, decision)) for name in others]

        if self.fields == (*plain, *others):
            return lambda row: (*plain_get(row), *other_cells(row))
        # Cells are computed as (plain..., others...), then put back in the requested order.
        order = _tuple_getter(
            [plain.index(name) if name in PLAIN_FIELDS else len(plain) + others.index(name) for name in self.fields]
        )
        return lambda row: order((*plain_get(row), *other_cells(row)))

    def json_object(self) -> Callable[[tuple], dict]:
        """A function from a row tuple (of ``columns``) to its MetricsData object (or the requested part)."""
        columns = self.columns
        fields = self.fields

        def build(row):
            point = dict(zip(columns, row))  # noqa: B905 - a row has one value a column
            # metrics_data makes the custom scalars and decision values floats again.
            if "extra" in point:
                point["extra"] = orjson.loads(point["extra"]) if point["extra"] else {}
            if "decision" in point:
                point["decision"] = orjson.loads(point["decision"]) if point["decision"] else None
            data = metrics_data(point)
            if not fields:
                return data
            out = {}
            for name in fields:
                if name.startswith(EXTRA_PREFIX):
                    key = name[len(EXTRA_PREFIX) :]
                    if key in data["extra"]:
                        out.setdefault("extra", {})[key] = data["extra"][key]
                    else:
                        out.setdefault("extra", {})
                else:
                    out[name] = data[name]
            return out

        return build


def csv_chunks(chunks: Iterable[list[tuple]], layout: ExportLayout) -> Iterator[bytes]:
    """A header row of field names, then one row a point; empty cells for missing values.

    Numbers are written as JSON writes them (orjson: the shortest text that reads back as the
    same float, like ``repr`` but several times faster, which keeps a million rows under 10 s).
    So a chunk whose text cells need no CSV escaping is one ``orjson.dumps`` of its rows with
    the brackets and nulls taken out: a JSON string without ``"``, ``\\``, control characters
    and commas reads the same as a quoted CSV field. Other chunks go through the csv module.
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(layout.fields)
    yield header.getvalue().encode()
    row_cells = layout.csv_row()
    text_positions = layout.csv_text_positions
    always_slow = layout.csv_has_json_cells
    safe_texts: set[str] = set()
    for rows in chunks:
        cells = list(map(row_cells, rows))
        if not cells:
            continue
        if always_slow or not _texts_safe(cells, text_positions, safe_texts):
            yield _csv_slow(cells)
            continue
        body = orjson.dumps(cells)[2:-2].replace(b"],[", b"\r\n").replace(b",null", b",")
        body = body.replace(b"\nnull", b"\n")
        if body.startswith(b"null"):
            body = body[4:]
        yield body + b"\r\n"


_CSV_UNSAFE = re.compile(r'[",\\\x00-\x1f]')


def _texts_safe(cells: list[tuple], positions: list[int], safe: set[str]) -> bool:
    for position in positions:
        for text in {row[position] for row in cells} - safe:
            if _CSV_UNSAFE.search(text):
                return False
            safe.add(text)
    return True


def _csv_slow(cells: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(
        [orjson.dumps(value).decode() if isinstance(value, float) else value for value in row] for row in cells
    )
    return buffer.getvalue().encode()


def json_chunks(chunks: Iterable[list[tuple]], layout: ExportLayout) -> Iterator[bytes]:
    """A JSON array of MetricsData objects, written a chunk at a time."""
    build = layout.json_object()
    yield b"["
    first = True
    pending = []
    size = 0
    for rows in chunks:
        for row in rows:
            item = orjson.dumps(build(row))
            if first:
                first = False
            else:
                pending.append(b",")
            pending.append(item)
            size += len(item) + 1
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(b"]")
    yield b"".join(pending)


def ndjson_chunks(chunks: Iterable[list[tuple]], layout: ExportLayout) -> Iterator[bytes]:
    """One MetricsData object a line (newline-delimited JSON)."""
    build = layout.json_object()
    pending = []
    size = 0
    for rows in chunks:
        for row in rows:
            item = orjson.dumps(build(row), option=orjson.OPT_APPEND_NEWLINE)
            pending.append(item)
            size += len(item)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


FORMATTERS = {"csv": csv_chunks, "json": json_chunks, "ndjson": ndjson_chunks}


def _tuple_getter(indexes: list[int]):
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        i = indexes[0]
        return lambda row: (row[i],)
    return itemgetter(*indexes)


def _extra(text) -> dict:
    # Custom scalars are floats by validation; PostgreSQL's jsonb gives big ones back as
    # integers (1e308 prints as 1 and 308 zeros), so they are made floats again.
    if not text:
        return {}
    return {key: float(value) for key, value in orjson.loads(text).items()}


def _decision(text) -> dict | None:
    if not text:
        return None
    return decision_floats(orjson.loads(text))


def _json_value(name: str, extra: dict | None, decision: dict | None):
    if name == "extra":
        return extra
    if name.startswith(EXTRA_PREFIX):
        return extra.get(name[len(EXTRA_PREFIX) :])
    return (decision or {}).get(name)


def _json_cell(value):
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value
