"""The two formats of Open311 (XML, required, and JSON, chosen by the path suffix) and its error answers."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from geo.errors import GeoInputError
from grid_mgmt.lib.errors import DomainError

log = logging.getLogger(__name__)

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("xml", "json")
MEDIA_TYPES: dict[Format, str] = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'

CHILDREN = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
    "notes": "note",
}
"""The element of each item of a nested list (the spec's XML)."""

# XML 1.0 cannot carry C0 controls other than tab, newline and carriage return, lone surrogates or U+FFFE/U+FFFF,
# not even as character references: they are dropped from the output.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_encoder = msgspec.json.Encoder()


class UnknownResource(DomainError):
    """No such Open311 resource or format (404 in the Open311 error format)."""

    status_code = 404


def split(name: str) -> tuple[str, Format]:
    """`E0102.json` → ("E0102", "json"); a name without `.json` / `.xml` is 404."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in FORMATS or not stem:
        raise UnknownResource(
            f"{name!r} names no format: append .xml or .json (e.g. services.json)", extra={"field": "format"}
        )
    return stem, suffix


def format_of(request: Request[Any, Any, Any]) -> Format:
    """The format an answer (an error too) is given in: the path's suffix, else what Accept prefers (XML default)."""
    last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    suffix = last.rpartition(".")[2] if "." in last else ""
    if suffix in FORMATS:
        return suffix
    return "json" if "json" in request.headers.get("accept", "") else "xml"


def xml_text(value: str) -> str:
    return _NOT_XML.sub("", value).translate(_ESCAPES)


def _element(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        out.append(f"<{name}/>")
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    elif isinstance(value, str):
        out.append(f"<{name}>{xml_text(value)}</{name}>")
    elif isinstance(value, Mapping):
        out.append(f"<{name}>")
        for key, item in value.items():
            _element(str(key), item, out)
        out.append(f"</{name}>")
    elif isinstance(value, list | tuple):
        child = CHILDREN.get(name, "item")
        out.append(f"<{name}>")
        for item in value:
            _element(child, item, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{xml_text(str(value))}</{name}>")


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """`data` (builtins) as the spec's XML: a list is `<root><item>…</item>…</root>`, a mapping `<root>…</root>`."""
    out: list[str] = []
    if item is not None:
        out.append(f"<{root}>")
        for one in data:
            _element(item, one, out)
        out.append(f"</{root}>")
    else:
        _element(root, data, out)
    return XML_DECLARATION + "".join(out).encode()


def render(
    fmt: Format, data: Any, *, root: str, item: str | None = None, status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response[Any]:  # fmt: skip
    """An answer in `fmt` (structs or builtins): JSON by msgspec, or the spec's XML."""
    body = _encoder.encode(data) if fmt == "json" else to_xml(root, item, msgspec.to_builtins(data))
    return Response(content=body, status_code=status, media_type=MEDIA_TYPES[fmt], headers=dict(headers or {}))


def error(fmt: Format, status: int, description: str, headers: Mapping[str, str] | None = None) -> Response[Any]:
    """Open311's error answer: a list of `{code, description}`."""
    return render(
        fmt, [{"code": status, "description": description}], root="errors", item="error", status=status,
        headers=headers,
    )  # fmt: skip


def open311_status(status: int) -> int:
    """The status Open311 clients expect: its 400/403/404 where ours says the same more finely; 429, 413, 5xx stay."""
    return {401: 403, 409: 400, 415: 400, 422: 400}.get(status, status)


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every error under /open311/v2, in the request's format."""
    fmt = format_of(request)
    if isinstance(exc, DomainError):
        status, detail, headers = exc.status_code, exc.detail, exc.headers
        field = exc.extra.get("field") if exc.extra else None
        if field and f"{field}" not in detail:
            detail = f"{field}: {detail}"
    elif isinstance(exc, GeoInputError):
        status, detail, headers = 400, exc.message, {}
    elif isinstance(exc, HTTPException):
        status, detail, headers = exc.status_code, exc.detail, dict(exc.headers or {})
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail, headers = 500, "internal server error", {}
    return error(fmt, open311_status(status), detail, headers)


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    DomainError: handle_error,
    GeoInputError: handle_error,
    HTTPException: handle_error,
    Exception: handle_error,
}
"""Layered over the app's handlers on the Open311 routes (the most specific class wins, so each is named)."""
