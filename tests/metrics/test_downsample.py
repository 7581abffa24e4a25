"""Min/max-per-bucket downsampling (``metrics/downsample.py``): extremes survive, x stays ordered."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.downsample import (
    Bucket,
    bucket_edges,
    bucket_index,
    buckets_from_rows,
    buckets_from_sql,
    minmax_downsample,
    series_points,
)


def noisy(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [math.sin(i / 500) + rng.uniform(-0.1, 0.1) for i in range(n)]


# --- Bucket edges ------------------------------------------------------------------------------


def test_integer_edges_cover_every_episode_once():
    edges = bucket_edges(10, 109, 7, integer=True)
    assert len(edges) == 8 and edges[0] == 10 and edges[-1] == 110
    assert all(a < b for a, b in zip(edges, edges[1:], strict=False))
    counts = [0] * 7
    for episode in range(10, 110):
        counts[bucket_index(edges, episode)] += 1
    assert sum(counts) == 100 and max(counts) - min(counts) <= 1


def test_integer_edges_never_outnumber_the_episodes():
    assert bucket_edges(5, 7, 500, integer=True) == [5, 6, 7, 8]
    assert bucket_edges(4, 4, 500, integer=True) == [4, 5]


def test_float_edges_end_exactly_at_the_last_x_which_belongs_to_the_last_bucket():
    edges = bucket_edges(0.1, 0.7, 3, integer=False)
    assert edges[0] == 0.1 and edges[-1] == 0.7 and len(edges) == 4
    assert bucket_index(edges, 0.7) == 2
    assert bucket_index(edges, 0.1) == 0
    assert bucket_edges(2.5, 2.5, 10, integer=False) == [2.5, 2.5]
    assert bucket_index([2.5, 2.5], 2.5) == 0


def test_huge_integer_ranges_stay_exact():
    edges = bucket_edges(0, 2**62, 500, integer=True)
    assert edges[-1] == 2**62 + 1 and all(isinstance(edge, int) for edge in edges)


# --- Extremes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spike", [1e9, -1e9])
def test_a_single_spike_in_100k_points_survives_at_its_x(spike):
    xs = list(range(100_000))
    ys = noisy(100_000)
    ys[61_803] = spike
    out = minmax_downsample(xs, ys, 1000, integer=True)
    assert len(out) <= 1000
    assert [61_803, spike] in out
    assert max(y for _, y in out) == max(ys) and min(y for _, y in out) == min(ys)


def test_every_bucket_keeps_its_min_and_max():
    xs = list(range(10_000))
    ys = noisy(10_000, seed=7)
    out = minmax_downsample(xs, ys, 200, integer=True)
    edges = bucket_edges(0, 9_999, 100, integer=True)
    for k in range(100):
        inside = [(x, y) for x, y in zip(xs, ys, strict=True) if edges[k] <= x < edges[k + 1]]
        low = min(inside, key=lambda p: p[1])
        high = max(inside, key=lambda p: p[1])
        assert list(low) in out and list(high) in out


def test_x_is_monotone_and_inside_the_data():
    xs = [i * 0.37 for i in range(50_000)]
    out = minmax_downsample(xs, noisy(50_000), 999)
    assert len(out) <= 999
    assert all(a[0] <= b[0] for a, b in zip(out, out[1:], strict=False))
    assert out[0][0] >= xs[0] and out[-1][0] <= xs[-1]
    assert set(x for x, _ in out) <= set(xs)


def test_small_curves_come_back_whole_without_missing_values():
    assert minmax_downsample([1, 2, 3], [5.0, None, 7.0], 10) == [[1, 5.0], [3, 7.0]]
    assert minmax_downsample([], [], 10) == []


def test_ties_keep_the_first_point_and_a_flat_bucket_is_one_point():
    assert Bucket(2, 3, 1.0, 3, 1.0, 4, 1.0).points() == [[3, 1.0]]
    rows = [(0, 1.0), (1, 1.0), (2, 5.0), (3, 5.0), (4, 1.0)]
    (buckets,) = buckets_from_rows(rows, [0, 5], 1)
    assert series_points(buckets) == [[0, 1.0], [2, 5.0]]
    assert buckets[0].last_x == 4 and buckets[0].mean == pytest.approx(2.6)


def test_max_before_min_in_a_bucket_keeps_x_order():
    rows = [(0, 0.0), (1, 9.0), (2, -9.0), (3, 0.0)]
    (buckets,) = buckets_from_rows(rows, [0, 4], 1)
    assert series_points(buckets) == [[1, 9.0], [2, -9.0]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=400),
    st.integers(min_value=2, max_value=50),
)
def test_property_bounded_sorted_and_keeps_global_extremes(ys, points):
    xs = list(range(len(ys)))
    out = minmax_downsample(xs, ys, points, integer=True)
    assert len(out) <= max(points, 1)
    assert all(a[0] <= b[0] for a, b in zip(out, out[1:], strict=False))
    assert max(y for _, y in out) == max(ys) and min(y for _, y in out) == min(ys)
    assert all(ys[x] == y for x, y in out)


# --- In the database: SQL buckets equal Python buckets -----------------------------------------


def _points(n: int) -> list[dict]:
    rng = random.Random(3)
    points = []
    for i in range(n):
        points.append(
            {
                "stream": "s",
                "seq": i,
                "timestamp": 1_700_000_000.0 + i * 0.25,
                "episode": i // 2,  # two points an episode: ties in x
                **{name: None for name in _NULLABLE},
                "current_reward": None if i % 7 == 0 else rng.uniform(-5, 5) + i / 100,
                "episode_length": rng.randint(10, 500),
                "algorithm": "",
                "extra": {"entropy": rng.random()} if i % 3 else {},
                "decision": None,
            }
        )
    points[1234]["current_reward"] = 1e300
    points[2345]["current_reward"] = -1e300
    return points


_NULLABLE = (
    "total_episodes",
    "average_reward",
    "best_reward",
    "win_rate",
    "loss_value",
    "learning_rate",
    "epsilon",
    "model_generation",
    "training_time_elapsed",
    "actions_per_second",
    "frames_per_second",
    "memory_usage_mb",
)


@pytest.mark.parametrize("x", ["episode", "time"])
def test_sql_buckets_equal_python_buckets(training_session, x):
    from django.db import connection

    from metrics.selectors import PointWindow, series_expression
    from metrics.services import _metric_points_insert

    _metric_points_insert(training_session.pk, _points(3000))
    quote = connection.ops.quote_name
    table = quote("metrics_metricpoint")
    x_column = quote("episode" if x == "episode" else "timestamp")
    ys = [series_expression(name) for name in ("current_reward", "episode_length", "extra.entropy", "loss_value")]
    where, params = PointWindow().where(training_session.pk)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN({x_column}), MAX({x_column}) FROM {table} WHERE {where}", params)
        lo, hi = cursor.fetchone()
        edges = bucket_edges(lo, hi, 97, integer=x == "episode")
        from_sql = buckets_from_sql(
            cursor, table=table, where=where, params=params, x=x_column, ys=ys, edges=edges, hi=hi, means=True
        )
        select = ", ".join(y for y, _ in ys)
        cursor.execute(
            f"SELECT {x_column}, {select} FROM {table} WHERE {where} ORDER BY {x_column}, {quote('id')}",
            [*(p for _, y_params in ys for p in y_params), *params],
        )
        from_rows = buckets_from_rows(cursor.fetchall(), edges, len(ys))
    for sql_buckets, row_buckets in zip(from_sql, from_rows, strict=True):
        assert series_points(sql_buckets) == series_points(row_buckets)
        for a, b in zip(sql_buckets, row_buckets, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                assert (a.count, a.last_x) == (b.count, b.last_x)
                assert a.mean == pytest.approx(b.mean, rel=1e-9)
    assert from_sql[3] == [None] * len(from_sql[3])  # loss_value: never sent
    rewards = series_points(from_sql[0])
    assert max(y for _, y in rewards) == 1e300 and min(y for _, y in rewards) == -1e300
