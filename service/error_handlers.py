"""The one JSON error shape on the wire (or an HTML page for people), for every error."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service import i18n
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


def speech_of(request: Request) -> i18n.Speech:
    """The language the handler chose, else the browser's (errors before any handler)."""
    chosen = getattr(request.state, "speech", None)
    if isinstance(chosen, i18n.Speech):
        return chosen
    services = getattr(request.state, "services", None)
    settings = getattr(services, "settings", None)
    language = i18n.negotiate(request.headers.get("accept-language"),
                              getattr(settings, "language", "id"))
    speech = i18n.Speech.of(language, getattr(settings, "time_zone", i18n.DEFAULT_ZONE))
    request.state.speech = speech
    return speech


def error_response(request: Request, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> Response:
    i18n.use(speech_of(request))
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
    return error_response(request, exc.status, exc.body(speech_of(request)), exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    speech = speech_of(request)
    message = speech.text(exc.detail) if isinstance(exc.detail, str) \
        else speech.text("Request failed")
    if exc.status_code == 404:
        message = speech.text("Nothing is at %(path)s", {"path": request.url.path})
    elif exc.status_code == 405:
        message = speech.text("%(method)s is not allowed on %(path)s",
                              {"method": request.method, "path": request.url.path})
    body = {"error": {"code": code, "message": message}}
    return error_response(request, exc.status_code, body, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    speech = speech_of(request)
    body = {"error": {
        "code": "internal_error",
        "message": speech.text("Something went wrong on our side."),
        "hint": speech.text(
            "Try again; if it keeps happening, give the operator the request id %(request_id)s",
            {"request_id": request.headers.get("x-request-id",
                                               getattr(request.state, "request_id", ""))}),
    }}
    return error_response(request, 500, body)


def exception_handlers() -> dict[Any, Any]:
    return {ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected}
