"""The one JSON error shape on the wire (or an HTML page for people), for every error."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.errors import ApiError

log = logging.getLogger("kumpul.errors")

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def wants_html(request: Request) -> bool:
    """Pages get HTML errors; the API and non-browser clients get JSON."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> Response:
    if wants_html(request):
        templates = getattr(request.app.state, "templates", None)
        if templates is not None:
            return templates.TemplateResponse(  # type: ignore[no-any-return]
                request, "error.html", {"failure": body["error"]}, status_code=status,
                headers=headers,
            )
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.body(), exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404:
        message = f"Nothing is at {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    body = {"error": {"code": code, "message": message}}
    return error_response(request, exc.status_code, body, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    body = {"error": {
        "code": "internal_error",
        "message": "Something went wrong on our side.",
        "hint": "Try again; if it keeps happening, give the operator the request id "
                + request.headers.get("x-request-id", getattr(request.state, "request_id", "")),
    }}
    return error_response(request, 500, body)


def exception_handlers() -> dict[Any, Any]:
    return {ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected}
