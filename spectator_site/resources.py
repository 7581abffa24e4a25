"""The admin's live resource page: what the process that serves it is doing right now.

The page (``/admin/resources/``) renders the current figures and refreshes itself from
``/admin/resources.json`` (staff only) with ``static/spectator/admin_resources.js``. Rates
per second come from the same monotonic counters that ``/metrics`` exports, sampled by this
process: the difference between the two latest samples at least ``MIN_INTERVAL`` apart.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from django.contrib import admin
from django.db import DatabaseError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache

from spectator_site import observability

POLL_SECONDS = 2
MIN_INTERVAL = 1.0
RATE_COUNTERS = ("messages_sent", "bytes_sent", "coalesced", "dropped", "ingest_points", "ingest_batches")
_STARTED = time.time()


def process_usage() -> dict:
    """This process: pid, resident memory, CPU seconds, open file descriptors, uptime."""
    figures = {}
    for family in observability.PROCESS.collect():
        for sample in family.samples:
            figures[sample.name] = sample.value
    times = os.times()
    started = figures.get("process_start_time_seconds", _STARTED)
    return {
        "pid": os.getpid(),
        "rss_bytes": figures.get("process_resident_memory_bytes"),
        "cpu_seconds": times.user + times.system,
        "open_fds": int(figures["process_open_fds"]) if "process_open_fds" in figures else None,
        "uptime_seconds": max(0.0, time.time() - started),
    }


def _counter_value(counter, **labels) -> float:
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return sample.value
    return 0.0


def counters_read() -> dict[str, float]:
    """The process's monotonic counters the page shows."""
    hub = observability.HUB_TOTALS.read()
    return {
        "messages_sent": hub["sent"],
        "bytes_sent": hub["bytes_out"],
        "coalesced": hub["coalesced"],
        "dropped": hub["dropped"],
        "too_slow_closed": hub["too_slow_closed"],
        "ingest_points": _counter_value(observability.INGEST_POINTS, result="accepted"),
        "ingest_batches": _counter_value(observability.INGEST_BATCHES),
    }


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_seconds: float
    counters: dict


class UsageSampler:
    """Turn counter samples into rates: per second over the latest interval of at least ``min_interval``."""

    def __init__(self, clock=time.monotonic, min_interval: float = MIN_INTERVAL):
        self._clock = clock
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._previous: Sample | None = None
        self._rates: dict | None = None

    def sample(self, *, cpu_seconds: float, counters: dict) -> dict | None:
        """Record a sample; return the rates of the latest full interval (``None`` before there is one)."""
        current = Sample(self._clock(), cpu_seconds, dict(counters))
        with self._lock:
            previous = self._previous
            if previous is None:
                self._previous = current
                return None
            elapsed = current.at - previous.at
            if elapsed >= self._min_interval:
                rates = {
                    name: max(0.0, current.counters[name] - previous.counters.get(name, 0)) / elapsed
                    for name in RATE_COUNTERS
                }
                rates["cpu_percent"] = max(0.0, current.cpu_seconds - previous.cpu_seconds) / elapsed * 100
                rates["interval_seconds"] = elapsed
                self._rates = rates
                self._previous = current
            return self._rates


SAMPLER = UsageSampler()


def _rooms(by_room: dict[str, int]) -> list[dict]:
    from rooms.models import Room

    try:
        rooms = {
            str(room["pk"]): room for room in Room.objects.filter(pk__in=list(by_room)).values("pk", "code", "name")
        }
    except DatabaseError:
        rooms = {}
    listed = []
    for room_id, spectators in by_room.items():
        room = rooms.get(room_id)
        listed.append(
            {
                "room_id": room_id,
                "room_code": room["code"] if room else None,
                "name": room["name"] if room else None,
                "spectators": spectators,
                "admin_url": reverse("admin:rooms_room_change", args=[room_id]) if room else None,
            }
        )
    return sorted(listed, key=lambda room: (-room["spectators"], room["room_code"] or ""))


def usage_snapshot(sampler: UsageSampler = SAMPLER) -> dict:
    """Everything the page shows, as JSON-ready data."""
    process = process_usage()
    counters = counters_read()
    by_room = observability.local_connections_by_room()
    return {
        **process,
        "local_connections": sum(by_room.values()),
        "rooms": _rooms(by_room),
        "counters": counters,
        "rates": sampler.sample(cpu_seconds=process["cpu_seconds"], counters=counters),
        "poll_seconds": POLL_SECONDS,
    }


def _is_staff(user) -> bool:
    return user.is_active and user.is_staff


@never_cache
def resources_json(request):
    """``/admin/resources.json``: the page's figures, for staff."""
    if not _is_staff(request.user):
        return JsonResponse({"error": "forbidden", "detail": "Staff only."}, status=403)
    return JsonResponse(usage_snapshot())


def resources_page(request):
    """``/admin/resources/``: the live resource page (the admin's own staff check wraps it)."""
    context = {
        **admin.site.each_context(request),
        "title": "Live resource usage",
        "usage": usage_snapshot(),
        "usage_url": reverse("admin-resources-json"),
    }
    return TemplateResponse(request, "admin/spectator_resources.html", context)
