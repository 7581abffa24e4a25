"""Rate limits that keep the API up when the shared cache is not.

DRF's throttles count requests in the cache, which is Redis when several processes run. With
Redis gone for a while, a throttle that raised would turn every request, ingest included,
into a 500; these let the request through and log once per outage. Password lockout
(rooms.lockout) does not fail open: without the cache a password join answers 503.
"""

import logging

from rest_framework import throttling

from spectator_site.faults import cache_errors

logger = logging.getLogger(__name__)


class _FailOpen:
    _warned = False

    def allow_request(self, request, view):
        try:
            allowed = super().allow_request(request, view)
        except cache_errors():
            if not _FailOpen._warned:
                logger.warning("rate limits off: the cache is unreachable", exc_info=True)
                _FailOpen._warned = True
            return True
        _FailOpen._warned = False
        return allowed


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle):
    pass
