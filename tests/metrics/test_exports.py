"""Export formatting (``metrics/exports.py``) and the chunked reader behind it (``metric_point_chunks``)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection

from metrics import exports
from metrics.exports import ExportLayout, csv_chunks, export_filename, json_chunks, ndjson_chunks
from metrics.ingest import metric_point_clean
from metrics.selectors import PointWindow, metric_point_chunks
from metrics.services import _metric_points_insert
from tests.support.live import point

FIELDS = ("loss_value", "algorithm", "episode", "extra.k", "stream")


def layout_rows(rows):
    """Row tuples in ``ExportLayout(FIELDS).columns`` order from simple dicts."""
    layout = ExportLayout(FIELDS)
    assert layout.columns == ["episode", "loss_value", "algorithm", "extra", "stream"]
    return layout, [
        (r["episode"], r.get("loss_value"), r.get("algorithm", ""), json.dumps(r.get("extra", {})), "s") for r in rows
    ]


def read_csv(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))


def test_csv_fast_path_equals_the_csv_module(monkeypatch):
    rows = [
        {"episode": 0},
        {"episode": 1, "loss_value": 0.1 + 0.2, "algorithm": "DQN-λ", "extra": {"k": 1e-7}},
        {"episode": 2, "loss_value": 1e308, "algorithm": "null"},
        {"episode": 3, "extra": {"k": 1e16}},
    ]
    layout, tuples = layout_rows(rows)
    fast = b"".join(csv_chunks([tuples[:2], tuples[2:]], layout))
    monkeypatch.setattr(exports, "_texts_safe", lambda *args: False)
    slow = b"".join(csv_chunks([tuples[:2], tuples[2:]], layout))
    assert (
        read_csv([fast])
        == read_csv([slow])
        == [
            list(FIELDS),
            ["", "", "0", "", "s"],
            ["0.30000000000000004", "DQN-λ", "1", "1e-7", "s"],
            ["1e+308", "null", "2", "", "s"],
            ["", "", "3", "1e+16", "s"],
        ]
    )


@pytest.mark.parametrize("text", ["a,b", 'say "hi"', "line\nbreak", "tab\there", "back\\slash", ",null"])
def test_csv_text_needing_escapes_reads_back(text):
    layout, tuples = layout_rows([{"episode": 0, "algorithm": text, "loss_value": None}, {"episode": 1}])
    rows = read_csv(csv_chunks([tuples], layout))
    assert rows[1] == ["", text, "0", "", "s"] and rows[2] == ["", "", "1", "", "s"]


def test_json_and_ndjson_chunks_join_into_valid_documents():
    layout = ExportLayout(("episode", "extra.k"))
    chunks = [[(i, json.dumps({"k": i / 10})) for i in range(j, j + 3)] for j in (0, 3)] + [[]]
    assert json.loads(b"".join(json_chunks(chunks, layout))) == [
        {"episode": i, "extra": {"k": i / 10}} for i in range(6)
    ]
    lines = b"".join(ndjson_chunks(chunks, layout)).splitlines()
    assert [json.loads(line)["episode"] for line in lines] == list(range(6))
    assert b"".join(json_chunks([], layout)) == b"[]"


def test_filenames(training_session):
    assert export_filename(training_session, "csv", episode_from=None, episode_to=None) == "cartpole-dqn-metrics.csv"
    name = export_filename(training_session, "ndjson", episode_from=0, episode_to=None)
    assert name == "cartpole-dqn-metrics-episodes-0-end.ndjson"


def test_chunk_reader_bounds_chunks_and_closes_its_cursor_when_left(training_session):
    _metric_points_insert(training_session.pk, [metric_point_clean(point(i)) for i in range(250)])
    chunks = metric_point_chunks(training_session.pk, window=PointWindow(), columns=["seq", "extra"], chunk_size=100)
    assert [
        len(rows)
        for rows in metric_point_chunks(
            training_session.pk, window=PointWindow(episode_from=10), columns=["seq"], chunk_size=100
        )
    ] == [100, 100, 40]
    first = next(chunks)
    assert first[0] == (0, "{}") and len(first) == 100
    body = csv_chunks(chunks, ExportLayout(("seq",)))
    next(body)
    body.close()
    chunks.close()
    assert chunks.gi_frame is None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_cursors")
            assert cursor.fetchone() == (0,)
