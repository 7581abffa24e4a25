"""One JSON error shape for the whole API.

``{"error": "<code>", "detail": "<message>", "fields": {"<field>": ["<message>", ...]}}``;
``fields`` appears for validation errors and names every offending field.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rooms.access import AccessRefused, Refusal
from rooms.lockout import LockedOut
from spectator_site.faults import RETRY_AFTER_SECONDS, cache_errors, database_errors

logger = logging.getLogger(__name__)

REFUSAL_STATUS = {
    Refusal.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    Refusal.CLOSED: status.HTTP_410_GONE,
    Refusal.EXPIRED: status.HTTP_410_GONE,
    Refusal.BANNED: status.HTTP_403_FORBIDDEN,
    Refusal.TIMED_OUT: status.HTTP_403_FORBIDDEN,
    Refusal.LINK_INVALID: status.HTTP_403_FORBIDDEN,
    Refusal.LINK_NOT_YOURS: status.HTTP_403_FORBIDDEN,
    Refusal.LOCKED: status.HTTP_403_FORBIDDEN,
    Refusal.PASSWORD_REQUIRED: status.HTTP_403_FORBIDDEN,
    Refusal.WRONG_PASSWORD: status.HTTP_403_FORBIDDEN,
    Refusal.SIGN_IN_REQUIRED: status.HTTP_401_UNAUTHORIZED,
    Refusal.NOT_INVITED: status.HTTP_403_FORBIDDEN,
    Refusal.DENIED: status.HTTP_403_FORBIDDEN,
    Refusal.FULL: status.HTTP_409_CONFLICT,
}


def _flatten(detail, prefix=""):
    """Turn DRF's nested error detail into ``{"a.b": [messages]}``."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list) and detail and all(isinstance(item, (dict, list)) for item in detail):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(item) for item in items]}


def error_response(code: str, detail: str, http_status: int, *, fields=None, headers=None) -> Response:
    body = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return Response(body, status=http_status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, AccessRefused):
        return error_response(exc.refusal.value, str(exc), REFUSAL_STATUS[exc.refusal])
    if isinstance(exc, LockedOut):
        return error_response(
            "locked_out", str(exc), status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, Http404):
        return error_response("not_found", str(exc) or "Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, SuspiciousOperation):
        # Django's request parsing limits (too many fields, too large a body): still the API's JSON.
        return error_response("bad_request", str(exc) or "Bad request.", status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoPermissionDenied):
        return error_response("permission_denied", str(exc) or "Permission denied.", status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields))
        return error_response(
            "validation_error", f"{first}: {fields[first][0]}", status.HTTP_400_BAD_REQUEST, fields=fields
        )

    if isinstance(exc, database_errors() + cache_errors()):
        # A backing service is down for a while: nothing was stored; the client retries.
        service = "database" if isinstance(exc, database_errors()) else "cache"
        logger.warning("%s unavailable for %s", service, context.get("request").path, exc_info=True)
        return error_response(
            f"{service}_unavailable",
            f"The {service} is unavailable for a moment; retry after {RETRY_AFTER_SECONDS} s.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException) and isinstance(exc.detail, str):
        code = getattr(exc.detail, "code", None) or code
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
    response.data = {"error": str(code), "detail": str(detail)}
    return response
