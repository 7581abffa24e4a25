"""What counts as a backing service being unavailable (database, cache), for 503 answers."""

from django.db import InterfaceError, OperationalError

# Seconds a client should wait before retrying when a backing service is down.
RETRY_AFTER_SECONDS = 2


def database_errors() -> tuple[type[BaseException], ...]:
    return (OperationalError, InterfaceError)


def cache_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of the cache backend (Redis when REDIS_URL is set)."""
    errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    try:
        from redis import exceptions as redis_exceptions

        errors += (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)
    except ImportError:  # pragma: no cover - redis comes with channels-redis
        pass
    return errors
