"""Prometheus metrics of this server process, served at ``/metrics``.

Why ``prometheus_client`` rather than an exporter of our own: it is the reference
implementation of the exposition formats (text and OpenMetrics, with content negotiation),
its counters and histograms are thread-safe (ingest runs in Django's sync threads), it reads
the process's memory, CPU and file descriptors from ``/proc``, and it has no dependencies.

Each server process exposes its own figures and is scraped on its own port (a Prometheus
target per process, which gives each series an ``instance`` label). No ``pid`` label: a pid
changes at every restart, so it would start new series each time and break counter
continuity, and scraping through the load-balancing proxy would reach a different process on
each scrape. ``/metrics`` answers only direct connections from ``SPECTATOR_METRICS_ALLOW``
(default loopback) and requests bearing ``SPECTATOR_METRICS_TOKEN``: room codes are labels here.

The room hub's hot path stays plain integer increments (``rooms.hub.HubStats``): this module
reads those at scrape time and adds what each hub gained since the last read to process-wide
totals, so the exported counters only ever grow, whichever event loops come and go.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import sys
import threading
import time
import weakref
from collections import Counter as _Tally
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import got_request_exception
from django.db import DatabaseError
from django.db.backends.signals import connection_created
from django.http import HttpResponse, JsonResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# No ``*_created`` series: they double the output and Prometheus's rate() does not need them.
disable_created_metrics()
# Our own registry: only what this module registers is exposed (no import-time surprises).
REGISTRY = CollectorRegistry(auto_describe=True)
PROCESS = ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

INGEST_BATCHES = Counter(
    "spectator_ingest_batches", "Metric-point batches persisted (HTTP and WebSocket ingest).", registry=REGISTRY
)
INGEST_POINTS = Counter(
    "spectator_ingest_points",
    "Metric points received, by result: accepted (stored), duplicate (a retried (stream, seq)), "
    "rejected (in a batch refused as invalid or for a closed session).",
    ["result"],
    registry=REGISTRY,
)
INGEST_BATCH_SECONDS = Histogram(
    "spectator_ingest_batch_seconds",
    "Time to persist one metric-point batch (the transaction, then handing it to the channel layer).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "spectator_database_errors",
    "Database errors: failed queries, and requests or health checks that failed on the database, by class.",
    ["error"],
    registry=REGISTRY,
)
for _result in ("accepted", "duplicate", "rejected"):
    INGEST_POINTS.labels(_result)
for _error in ("OperationalError", "InterfaceError", "IntegrityError", "ProgrammingError", "DataError"):
    DATABASE_ERRORS.labels(_error)


# --- Ingest -----------------------------------------------------------------------------------


def observe_ingest(append):
    """Wrap ``metric_points_append``: count its batch and points and time it."""

    @functools.wraps(append)
    def observed(*, training_session, points, **kwargs):
        if not points:
            return append(training_session=training_session, points=points, **kwargs)
        started = time.perf_counter()
        try:
            result = append(training_session=training_session, points=points, **kwargs)
        except ValidationError:
            # The session closed under an open ingest socket: the batch is refused.
            INGEST_POINTS.labels("rejected").inc(len(points))
            raise
        INGEST_BATCH_SECONDS.observe(time.perf_counter() - started)
        INGEST_BATCHES.inc()
        INGEST_POINTS.labels("accepted").inc(result.accepted)
        INGEST_POINTS.labels("duplicate").inc(result.duplicates)
        return result

    return observed


def ingest_points_rejected(points) -> None:
    """Count the points of a batch refused as invalid (a batch that is not even a list counts one)."""
    INGEST_POINTS.labels("rejected").inc(len(points) if isinstance(points, list) else 1)


@contextmanager
def ingest_rejections(points):
    """Count the points of a batch whose validation fails inside the block (and re-raise)."""
    from metrics.ingest import IngestError

    try:
        yield
    except (IngestError, ValidationError):
        ingest_points_rejected(points)
        raise


# --- Database and channel layer errors --------------------------------------------------------


def database_error_count(exc: BaseException) -> None:
    """Count a database error once, however many places see it go by."""
    if not isinstance(exc, DatabaseError) or getattr(exc, "_spectator_counted", False):
        return
    try:
        exc._spectator_counted = True
    except AttributeError:
        pass
    DATABASE_ERRORS.labels(type(exc).__name__).inc()


def _count_failed_queries(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        database_error_count(exc)
        raise


def _on_connection_created(sender, connection, **kwargs):
    # First in the list: ``connection.execute_wrapper()`` blocks pop the last one on exit.
    if _count_failed_queries not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _count_failed_queries)


def _on_request_exception(sender, request=None, **kwargs):
    exc = sys.exc_info()[1]
    if exc is not None:
        database_error_count(exc)


_publish_failures = _Tally()
_publish_lock = threading.Lock()


def channel_layer_publish_failed() -> None:
    """Count a message the channel layer refused to take (group_send raised)."""
    with _publish_lock:
        _publish_failures["publish"] += 1


def instrumentation_install() -> None:
    """Hook the database signals (from the site's AppConfig.ready)."""
    connection_created.connect(_on_connection_created, dispatch_uid="spectator-db-errors")
    got_request_exception.connect(_on_request_exception, dispatch_uid="spectator-db-errors")


# --- The room hubs ------------------------------------------------------------------------------

HUB_COUNTERS = {
    "received": ("spectator_hub_received", "Group messages this process's room hub received from the channel layer."),
    "delivered": ("spectator_hub_deliveries", "Stream items and room events the hub queued to local connections."),
    "sent": ("spectator_ws_messages_sent", "WebSocket messages the hub handed to the server (messages out)."),
    "bytes_out": (
        "spectator_ws_sent_bytes",
        "Payload handed to the server: characters of text messages (bytes for ASCII JSON), bytes of binary ones.",
    ),
    "coalesced": ("spectator_hub_coalesced", "Decisions and frames replaced by a newer one before a spectator got it."),
    "dropped": ("spectator_hub_dropped", "Queued messages discarded for connections closed as too slow or closing."),
    "too_slow_closed": ("spectator_hub_too_slow_closed", "Connections closed with 4408 for falling too far behind."),
}


class HubTotals:
    """Process-wide counters summed over every room hub (one per event loop), never decreasing."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._totals = dict.fromkeys([*HUB_COUNTERS, "layer_errors"], 0)

    def read(self) -> dict[str, int]:
        from rooms import hub as hub_module

        with self._lock:
            for hub in list(hub_module._hubs.values()):
                stats = hub.stats
                current = {name: getattr(stats, name, 0) for name in self._totals}
                before = self._seen.get(hub, {})
                for name, value in current.items():
                    self._totals[name] += max(0, value - before.get(name, 0))
                self._seen[hub] = current
            return dict(self._totals)


HUB_TOTALS = HubTotals()


def local_connections_by_room() -> dict[str, int]:
    """Local spectator sockets per room id, in the live hubs of this process."""
    from rooms import hub as hub_module

    counts: dict[str, int] = {}
    for hub in list(hub_module._hubs.values()):
        loop = getattr(hub, "_loop", None)
        if loop is not None and loop.is_closed():
            continue
        for room_id, entry in list(hub.rooms.items()):
            if entry.connections:
                counts[room_id] = counts.get(room_id, 0) + len(entry.connections)
    return counts


_room_codes: dict[str, str] = {}


def room_codes(room_ids) -> dict[str, str]:
    """Room id to code for ``room_ids`` (codes never change, so they are kept; the database is asked once)."""
    from rooms.models import Room

    missing = [room_id for room_id in room_ids if room_id not in _room_codes]
    if missing:
        try:
            for pk, code in Room.objects.filter(pk__in=missing).values_list("pk", "code"):
                _room_codes[str(pk)] = code
        except DatabaseError:
            logger.warning("metrics: could not read room codes", exc_info=True)
    wanted = set(room_ids)
    for room_id in [room_id for room_id in _room_codes if room_id not in wanted]:
        _room_codes.pop(room_id, None)
    return {room_id: _room_codes[room_id] for room_id in room_ids if room_id in _room_codes}


class HubCollector(Collector):
    """Read the hubs at scrape time: counters, and spectators per room with local connections."""

    def describe(self):
        # Registration asks for the names without reading anything (the hubs may not be importable yet).
        for metric, documentation in HUB_COUNTERS.values():
            yield CounterMetricFamily(metric, documentation)
        yield CounterMetricFamily("spectator_channel_layer_errors", "", labels=["operation"])
        yield GaugeMetricFamily("spectator_local_connections", "")
        yield GaugeMetricFamily("spectator_room_spectators", "", labels=["room_code"])

    def collect(self):
        totals = HUB_TOTALS.read()
        for name, (metric, documentation) in HUB_COUNTERS.items():
            yield CounterMetricFamily(metric, documentation, value=totals[name])
        with _publish_lock:
            publish_failures = _publish_failures["publish"]
        errors = CounterMetricFamily(
            "spectator_channel_layer_errors",
            "Channel-layer failures: the room hub's (receiving, rejoining its groups) and publishes that raised.",
            labels=["operation"],
        )
        errors.add_metric(["hub"], totals["layer_errors"])
        errors.add_metric(["publish"], publish_failures)
        yield errors

        by_room = local_connections_by_room()
        local = GaugeMetricFamily("spectator_local_connections", "Spectator sockets connected to this process.")
        local.add_metric([], sum(by_room.values()))
        yield local
        rooms = GaugeMetricFamily(
            "spectator_room_spectators",
            "Spectator sockets connected to this process, per room (only rooms with local connections).",
            labels=["room_code"],
        )
        for room_id, code in sorted(room_codes(list(by_room)).items(), key=lambda item: item[1]):
            rooms.add_metric([code], by_room[room_id])
        yield rooms


REGISTRY.register(HubCollector())


class PythonHeapCollector(Collector):
    """Memory blocks the interpreter holds: grows with a leak, unlike RSS after a warm-up plateau."""

    def describe(self):
        yield GaugeMetricFamily("spectator_python_allocated_blocks", "")

    def collect(self):
        yield GaugeMetricFamily(
            "spectator_python_allocated_blocks",
            "Memory blocks currently allocated by the Python interpreter (sys.getallocatedblocks()).",
            value=sys.getallocatedblocks(),
        )


REGISTRY.register(PythonHeapCollector())


# --- The endpoint -------------------------------------------------------------------------------

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address_allowed(request) -> bool:
    # A forwarded request came through a proxy: its socket address is the proxy's, not the caller's.
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.SPECTATOR_METRICS_ALLOW)))


def _token_allowed(request) -> bool:
    expected = settings.SPECTATOR_METRICS_TOKEN
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def metrics_access_allowed(request) -> bool:
    """A direct connection from an allowed address, or the metrics token."""
    return _token_allowed(request) or _address_allowed(request)


def metrics(request):
    """``/metrics``: this process's figures in the Prometheus text format (OpenMetrics on request)."""
    if not metrics_access_allowed(request):
        return JsonResponse(
            {
                "error": "forbidden",
                "detail": "Metrics are served to allowed addresses (SPECTATOR_METRICS_ALLOW) or with their token.",
            },
            status=403,
        )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(REGISTRY), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
