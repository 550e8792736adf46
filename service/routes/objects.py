"""Serving stored objects through signed links (the local adapter's signed URLs), with Range."""

from __future__ import annotations

import re

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from service.errors import ApiError, Forbidden, NotFound
from service.storage import InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore
from service.storage.local import LocalStore
from service.web import services

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ApiError):
    status = 416
    code = "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single byte range, None for the whole object."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable("Only a single byte range is supported.",
                                  headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable("The range is outside the %(size)s bytes of this object.",
                                  size=size,
                                  headers={"Content-Range": f"bytes */{size}"})
    return start, end


def ranged_response(request: Request, store: ObjectStore, info: ObjectInfo,
                    extra_headers: dict[str, str] | None = None) -> Response:
    """Stream an object, honouring one Range header (players need it to seek)."""
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{info.etag}"', **(extra_headers or {})}
    span = parse_range(request.headers.get("range"), info.size)
    status = 200
    start, length = 0, info.size
    if span is not None:
        start, end = span
        length = end - start + 1
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=info.content_type)
    body = store.get(info.key, start, length)
    return StreamingResponse(body, status_code=status, headers=headers,
                             media_type=info.content_type)


async def signed_object(request: Request) -> Response:
    store = services(request).store
    key = request.path_params["key"]
    if not isinstance(store, LocalStore):
        raise NotFound("Objects are served by the storage server.", code="not_found")
    try:
        expires = int(request.query_params.get("expires", "0"))
    except ValueError:
        expires = 0
    try:
        ok = store.verify(key, expires, request.query_params.get("sig", ""))
    except InvalidKey:
        ok = False
    if not ok:
        raise Forbidden("This media link is invalid or has expired.", code="link_expired",
                        hint="Reload the page for a fresh link.")
    try:
        info = await anyio.to_thread.run_sync(store.stat, key)
    except ObjectNotFound:
        raise NotFound("This media no longer exists.", code="object_not_found") from None
    return ranged_response(request, store, info, {"Cache-Control": "private, max-age=300"})


routes = [Route("/objects/{key:path}", signed_object, methods=["GET", "HEAD"],
                include_in_schema=False)]
