"""Errors that carry their HTTP status, and the handlers that turn every error into a clear JSON body."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from geo.errors import GeoInputError

log = logging.getLogger("grid_mgmt")


class DomainError(Exception):
    """A failure the client can act on; `status_code` is what the API answers."""

    status_code = 400

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra or {}
        self.headers = headers or {}


class NotFound(DomainError):
    """The addressed record does not exist (or is outside the caller's scope)."""

    status_code = 404


class InvalidInput(DomainError):
    """Well-formed but unacceptable input (bad coordinates, min > max …)."""

    status_code = 422


class Conflict(DomainError):
    """The request collides with the current state (stale version, duplicate key)."""

    status_code = 409


def _body(status: int, detail: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return body


def domain_error_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return Response(
        _body(exc.status_code, exc.detail, exc.extra),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def geo_error_handler(_: Request[Any, Any, Any], exc: GeoInputError) -> Response[dict[str, Any]]:
    extra = {"field": exc.field} if exc.field else None
    return Response(_body(422, exc.message, extra), status_code=422, media_type=MediaType.JSON)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, HTTPException):
        extra = exc.extra if isinstance(exc.extra, dict) else ({"errors": exc.extra} if exc.extra else None)
        return Response(_body(exc.status_code, exc.detail, extra), status_code=exc.status_code, headers=exc.headers)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(_body(500, "internal server error"), status_code=500, media_type=MediaType.JSON)


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    DomainError: domain_error_handler,
    GeoInputError: geo_error_handler,
    Exception: internal_error_handler,
}

ERROR_RESPONSES = {
    400: "The request is malformed: a parameter has the wrong type or is missing.",
    401: "No valid access token: log in and send `Authorization: Bearer <token>`.",
    403: "Your roles do not allow this.",
    404: "No such record (or it is outside your data scope).",
    409: "It collides with the current state: an illegal transition, a stale version, a reused key.",
    413: "The body is too large.",
    415: "The upload's content is not an accepted type.",
    429: "Too many requests; retry after the `Retry-After` seconds.",
    422: "The input is well-formed but unacceptable (the message says what and why).",
}
