"""Errors that carry their HTTP status and their part of the one JSON error shape.

Every error leaves Kumpul as `{"error": {"code": ..., "message": ..., "hint": ...}}`.
Domain code raises these; `service.error_handlers` sends them. No HTTP framework here,
so workers can use the domain too.
"""

from __future__ import annotations

from typing import Any

from service import i18n


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **params: object,
    ) -> None:
        """`message` and `hint` are English msgids of the catalogs, with named
        placeholders (`%(size_bytes)s`) filled from `params` in the reader's language."""
        super().__init__(i18n.ENGLISH.text(message, params))
        self.message = message
        self.hint = hint
        self.params = params
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self, speech: i18n.Speech | None = None) -> dict[str, Any]:
        """The JSON error, in `speech` (the current request's language when not given)."""
        speech = speech or i18n.current()
        error: dict[str, Any] = {"code": self.code,
                                 "message": speech.text(self.message, self.params)}
        if self.hint:
            error["hint"] = speech.text(self.hint, self.params)
        return {"error": error}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "not_authenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Gone(ApiError):
    status = 410
    code = "gone"


class Locked(ApiError):
    status = 423
    code = "upload_locked"


class PayloadTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    status = 422
    code = "invalid_input"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"


