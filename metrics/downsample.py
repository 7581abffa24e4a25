"""Min/max-per-bucket downsampling: at most N points a curve, and every bucket's extremes kept.

The x range (episodes or timestamps) splits into equal-width buckets, like a chart's pixel
columns. Each bucket keeps its lowest and its highest point at their exact x, in x order, so
a single spike among a million points still shows where it happened (M4 keeps first and last
too; at a chart's resolution the min/max pair draws the same picture with half the points).

Small ranges aggregate in Python over the fetched rows. Large ranges aggregate in SQL with
two indexed range queries per bucket (extremes, then where they are). Measured on a million
points, three metrics, 500 buckets: one ``GROUP BY`` over a computed bucket number sorts
every row (SQLite 1.2 s, PostgreSQL 0.7 s, extremes only, without their x); reading the
rows into Python takes 0.65 s and 1.2 s before any work; the range queries find extremes and
their x in 0.8 s and 0.9 s (benchmarks/RESULTS.md, "Export", has the endpoint's times).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass
class Bucket:
    """One metric's aggregate over one bucket: its extremes (with their x) and its mean."""

    count: int
    min_x: float
    min_y: float
    max_x: float
    max_y: float
    last_x: float
    mean: float | None

    def add(self, x, y) -> None:
        # Rows arrive in x order, so strict comparisons keep the first (smallest x) of ties.
        self.count += 1
        self.mean += (y - self.mean) / self.count
        if y < self.min_y:
            self.min_x, self.min_y = x, y
        if y > self.max_y:
            self.max_x, self.max_y = x, y

    def points(self) -> list[list]:
        """The bucket's extremes as ``[x, y]`` pairs in x order (one pair when they coincide)."""
        low, high = [self.min_x, self.min_y], [self.max_x, self.max_y]
        if low == high:
            return [low]
        return [low, high] if self.min_x <= self.max_x else [high, low]


def bucket_edges(lo, hi, buckets: int, *, integer: bool) -> list:
    """Edges of at most ``buckets`` equal-width buckets covering ``[lo, hi]``.

    Bucket ``k`` holds ``edges[k] <= x < edges[k + 1]``; the last one also holds ``hi``.
    Integer x (episodes) never gets more buckets than distinct values.
    """
    if integer:
        span = hi - lo + 1
        buckets = max(1, min(buckets, span))
        return [lo + span * k // buckets for k in range(buckets + 1)]
    if hi <= lo:
        return [lo, hi]
    edges = [lo + (hi - lo) * k / buckets for k in range(buckets)]
    edges.append(hi)
    return edges


def bucket_index(edges: Sequence, x) -> int:
    return min(bisect_right(edges, x) - 1, len(edges) - 2)


def buckets_from_rows(rows: Iterable[Sequence], edges: Sequence, metrics: int) -> list[list[Bucket | None]]:
    """Aggregate rows ``(x, y1, y2, ...)`` sorted by x into each metric's buckets (None: empty).

    A bucket's ``last_x`` is its last x with any metric, as ``buckets_from_sql`` finds it.
    """
    result: list[list[Bucket | None]] = [[None] * (len(edges) - 1) for _ in range(metrics)]
    last_x = [None] * (len(edges) - 1)
    for row in rows:
        x = row[0]
        k = bucket_index(edges, x)
        last_x[k] = x
        for m in range(metrics):
            y = row[m + 1]
            if y is None:
                continue
            bucket = result[m][k]
            if bucket is None:
                result[m][k] = Bucket(1, x, y, x, y, x, y)
            else:
                bucket.add(x, y)
    for buckets in result:
        for k, bucket in enumerate(buckets):
            if bucket is not None:
                bucket.last_x = last_x[k]
    return result


def buckets_from_sql(
    cursor,
    *,
    table: str,
    where: str,
    params: Sequence,
    x: str,
    ys: Sequence[tuple[str, Sequence]],
    edges: Sequence,
    hi,
    means: bool = False,
) -> list[list[Bucket | None]]:
    """Aggregate in the database, bucket by bucket, with the same extremes as ``buckets_from_rows``.

    ``where``/``params`` select the rows (without bounds on ``x``: each bucket adds its own,
    and SQLite would scan the whole window for every bucket if it kept both), ``x`` is the x
    column, ``ys`` the metrics as ``(sql expression, its params)``. Per bucket, one query
    finds each metric's count and extremes, a second one where the extremes are (and, with
    ``means``, the mean: each value divided by the count first, so huge values cannot
    overflow a sum). Both read the values through a subquery, so a custom scalar's JSON is
    parsed once a row and query. A bucket's ``last_x`` is its last x with any metric.
    """
    n = len(edges) - 1
    result: list[list[Bucket | None]] = [[None] * n for _ in ys]
    values = ", ".join(f"{y} AS y{m}" for m, (y, _) in enumerate(ys))
    values_params = [p for _, y_params in ys for p in y_params]
    aggregate = ", ".join(f"COUNT(y{m}), MIN(y{m}), MAX(y{m})" for m in range(len(ys)))
    for k in range(n):
        upper = edges[k + 1] if k < n - 1 else hi
        inner = (
            f"(SELECT {x} AS x, {values} FROM {table} WHERE {where} AND {x} >= {placeholder(edges[k])} "
            f"AND {x} {'<' if k < n - 1 else '<='} {placeholder(upper)}) AS bucket"
        )
        inner_params = [*values_params, *params, edges[k], upper]
        cursor.execute(f"SELECT MAX(x), {aggregate} FROM {inner}", inner_params)
        row = cursor.fetchone()
        present = [m for m in range(len(ys)) if row[1 + 3 * m]]
        if not present:
            continue
        locate, locate_params = [], []
        for m in present:
            count, low, high = row[1 + 3 * m : 4 + 3 * m]
            locate.append(f"MIN(CASE WHEN y{m} = {placeholder(low)} THEN x END)")
            locate.append(f"MIN(CASE WHEN y{m} = {placeholder(high)} THEN x END)")
            locate_params += [low, high]
            if means:
                locate.append(f"SUM(y{m} / {placeholder(float(count))})")
                locate_params.append(float(count))
        cursor.execute(f"SELECT {', '.join(locate)} FROM {inner}", [*locate_params, *inner_params])
        located = cursor.fetchone()
        width = 3 if means else 2
        for i, m in enumerate(present):
            count, low, high = row[1 + 3 * m : 4 + 3 * m]
            min_x, max_x = located[width * i : width * i + 2]
            mean = located[width * i + 2] if means else None
            result[m][k] = Bucket(count, min_x, low, max_x, high, row[0], mean)
    return result


def placeholder(value) -> str:
    """The SQL placeholder for a bound value: floats stay doubles on PostgreSQL too."""
    # PostgreSQL reads a bound float as a numeric literal (and numeric arithmetic returns
    # Decimal); the cast keeps it a double. SQLite reads the type name as REAL.
    return "CAST(%s AS DOUBLE PRECISION)" if isinstance(value, float) else "%s"


def series_points(buckets: Iterable[Bucket | None]) -> list[list]:
    """A downsampled curve: each non-empty bucket's extremes, in x order."""
    return [point for bucket in buckets if bucket is not None for point in bucket.points()]


def minmax_downsample(xs: Sequence, ys: Sequence, points: int, *, integer: bool = False) -> list[list]:
    """Downsample one curve held in memory (x ascending) to at most ``points`` points."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if len(pairs) <= points:
        return [[x, y] for x, y in pairs]
    edges = bucket_edges(pairs[0][0], pairs[-1][0], points // 2, integer=integer)
    return series_points(buckets_from_rows(pairs, edges, 1)[0])
