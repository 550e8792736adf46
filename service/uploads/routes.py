"""The tus 1.0 endpoint: OPTIONS, POST (creation), HEAD, PATCH, DELETE (termination).

Bytes stream from the request into the upload's sink in batches written by a thread
while the next batch arrives, with no database transaction held open while they flow.
One Redis lock per upload keeps two PATCHes from writing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from service.db.models import Clip, Upload
from service.domain import communities, uploads
from service.domain.roles import Permission
from service.domain.story_rules import Refusal, StoryLimits, refuse_type
from service.errors import ApiError, BadRequest, Conflict, PayloadTooLarge
from service.locks import RELEASE_POLL, UploadLock, upload_lock
from service.storage.uploads import Write
from service.uploads import protocol as tus
from service.web import Services, require_user, services

BATCH = 4 * 1024 * 1024  # bytes handed to the writer thread at a time
SNIFF = 16
LOCK_EXTEND_EVERY = 10.0  # seconds

Handler = Callable[[Request], Awaitable[Response]]


def tus_errors(handler: Handler) -> Handler:
    """Every answer of the endpoint, errors included, carries Tus-Resumable."""
    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except ApiError as exc:
            exc.headers.setdefault("Tus-Resumable", tus.VERSION)
            raise
        response.headers.setdefault("Tus-Resumable", tus.VERSION)
        return response

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def options(request: Request) -> Response:
    svc = services(request)
    return Response(status_code=204, headers={
        "Tus-Resumable": tus.VERSION, "Tus-Version": tus.VERSION,
        "Tus-Extension": tus.EXTENSIONS, "Tus-Max-Size": str(svc.settings.upload_max_bytes),
        "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUMS)})


@tus_errors
async def create(request: Request) -> Response:
    """
    summary: Start a resumable upload of a story (tus 1.0 creation).
    description: >
      Headers Tus-Resumable 1.0.0 and Upload-Length; Upload-Metadata carries community,
      release (the accepted release version), and optionally prompt, title, filename, filetype.
    tags: [uploads]
    responses:
      201: {description: Created; the Location header names the upload}
      400: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      412: {$ref: '#/components/responses/Error'}
      413: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
      429: {$ref: '#/components/responses/Error'}
    """
    tus.check_version(request)
    if "upload-defer-length" in request.headers:
        raise BadRequest("Uploads need their length up front.", code="length_required",
                         hint="Send Upload-Length.")
    length = tus.number_header(request, "Upload-Length")
    meta = tus.metadata(request)
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_user(request, session)
        if not meta.get("community"):
            raise BadRequest("Upload-Metadata must name the community (its slug).",
                             code="community_required",
                             hint="Add 'community <base64 slug>' to Upload-Metadata.")
        access = await communities.require(session, who.user, meta["community"],
                                           Permission.share_story)
        hourly = f"uploads:{who.user.id}"
        await svc.limiter.check(hourly, svc.settings.uploads_per_hour,
                                message="You started %(count)s uploads in the last hour.",
                                code="too_many_uploads", count=svc.settings.uploads_per_hour)
        upload = await uploads.create(session, access, svc.upload_sink, svc.settings,
                                      length=length, meta=meta)
    await svc.limiter.hit(hourly, 3600)
    return Response(status_code=201, headers={
        **tus.base_headers(), "Location": f"/api/uploads/{upload.id}",
        "Upload-Expires": tus.expires_header(upload.expires_at)})


async def _load(request: Request, svc: Services) -> tuple[Upload, Clip]:
    async with svc.db() as session:
        who = await require_user(request, session)
        return await uploads.find(session, who.user.id, request.path_params["upload_id"])


@tus_errors
async def head(request: Request) -> Response:
    tus.check_version(request)
    svc = services(request)
    upload, _ = await _load(request, svc)
    offset = upload.length if upload.completed_at else await anyio.to_thread.run_sync(
        svc.upload_sink.offset, upload)
    headers = {**tus.base_headers(), "Upload-Offset": str(offset),
               "Upload-Length": str(upload.length)}
    if upload.completed_at is None:
        headers["Upload-Expires"] = tus.expires_header(upload.expires_at)
    return Response(status_code=200, headers=headers)


@tus_errors
async def patch(request: Request) -> Response:
    """
    summary: Send the next bytes of an upload (tus 1.0 core).
    tags: [uploads]
    parameters:
      - {name: upload_id, in: path, required: true, schema: {type: string}}
    responses:
      204: {description: Stored; Upload-Offset says how much}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
      412: {$ref: '#/components/responses/Error'}
      413: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      423: {$ref: '#/components/responses/Error'}
    """
    tus.check_version(request)
    tus.check_patch_type(request)
    start = tus.number_header(request, "Upload-Offset")
    digest = tus.checksum(request)
    svc = services(request)
    upload, clip = await _load(request, svc)
    async with upload_lock(svc.redis, upload.id, svc.heartbeat.instance) as lock:
        upload, clip = await _load(request, svc)  # as the lock's last holder left it
        return await _receive(request, svc, upload, clip, start, digest, lock)


async def _receive(request: Request, svc: Services, upload: Upload, clip: Clip, start: int,
                   digest: tuple[tus.Hasher, bytes] | None, lock: UploadLock) -> Response:
    sink = svc.upload_sink
    current = await anyio.to_thread.run_sync(sink.offset, upload)
    if upload.completed_at is not None:
        current = upload.length
    if start != current:
        raise Conflict("This upload is at byte %(current)s, not %(start)s.", current=current,
                       start=start,
                       code="offset_mismatch", hint="Resume from Upload-Offset.",
                       headers={"Upload-Offset": str(current)})
    remaining = upload.length - current
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() \
            and int(declared) > remaining:
        raise PayloadTooLarge("Only %(remaining)s more bytes fit in this upload.",
                              remaining=remaining,
                              code="upload_overflow", hint="Send no more than Upload-Length.")
    head = b"" if current >= SNIFF or current == 0 else await anyio.to_thread.run_sync(
        sink.head, upload, current)
    write = await anyio.to_thread.run_sync(sink.begin, upload)
    body = _Body(write, lock)
    try:
        oversent = await body.take(request, remaining, digest[0] if digest else None,
                                   sniff=None if current >= SNIFF else head,
                                   length=upload.length,
                                   limits=StoryLimits.from_settings(svc.settings))
        if body.refusal is not None:
            await anyio.to_thread.run_sync(write.rollback)
            await _discard(svc, upload, clip, "upload.refused")
            raise uploads.refusal_error(body.refusal)
        if digest is not None and digest[0].digest() != digest[1]:
            await anyio.to_thread.run_sync(write.rollback)
            raise tus.ChecksumMismatch("The bytes don't match Upload-Checksum; none were kept.",
                                       hint="Send the same bytes again.")
        await anyio.to_thread.run_sync(write.commit)
    except BaseException:
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(write.rollback)
        raise
    offset = current + body.received
    finished = await _save(svc, upload, offset)
    with contextlib.suppress(Exception):  # tidying only: a leftover goes with the upload
        await anyio.to_thread.run_sync(write.saved)
    if oversent:
        raise PayloadTooLarge("More bytes arrived than Upload-Length; the extra were dropped.",
                              code="upload_overflow", headers={"Upload-Offset": str(offset)})
    headers = {**tus.base_headers(), "Upload-Offset": str(offset)}
    if not finished:
        headers["Upload-Expires"] = tus.expires_header(upload.expires_at)
    return Response(status_code=204, headers=headers)


class _Body:
    """Moves a request body into a Write: batches of chunks as received (no copies), each
    written by a thread while the next batch arrives."""

    def __init__(self, write: Write, lock: UploadLock) -> None:
        self.write = write
        self.lock = lock
        self.received = 0
        self.refusal: Refusal | None = None
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._writing: asyncio.Task[None] | None = None
        self._extended = time.monotonic()
        self._reading = anyio.CancelScope()

    async def take(self, request: Request, room: int, hasher: tus.Hasher | None, *,
                   sniff: bytes | None, length: int, limits: StoryLimits) -> bool:
        """Receive up to `room` bytes; True if the client sent more than that. Reading stops
        early, keeping what arrived, when another request asks for the upload's lock."""
        oversent = False
        watcher = asyncio.ensure_future(self._watch())
        try:
            with self._reading:
                oversent = await self._read(request, room, hasher, sniff, length, limits)
        except ClientDisconnect:
            pass  # keep what arrived: the client resumes from the stored offset
        finally:
            watcher.cancel()
        if self.refusal is None:
            await self._flush()
        await self._settle()
        return oversent

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_POLL)
            with contextlib.suppress(Exception):  # Redis away: nobody can ask meanwhile
                if await self.lock.release_requested():
                    self._reading.cancel()
                    return

    async def _read(self, request: Request, room: int, hasher: tus.Hasher | None,
                    sniff: bytes | None, length: int, limits: StoryLimits) -> bool:
        oversent = False
        async for chunk in request.stream():
            left = room - self.received - self._batch_bytes
            if len(chunk) > left:
                chunk, oversent = chunk[:left], True
            if hasher is not None:
                hasher.update(chunk)
            if sniff is not None:  # the first bytes decide the type
                sniff += chunk[:SNIFF]
                if len(sniff) >= min(SNIFF, length):
                    self.refusal = refuse_type(sniff, limits)
                    sniff = None
                    if self.refusal is not None:
                        break
            if chunk:
                self._batch.append(chunk)
                self._batch_bytes += len(chunk)
            if self._batch_bytes >= BATCH:
                await self._flush()
            if oversent:
                break
        return oversent

    async def _settle(self) -> None:
        if self._writing is not None:
            await asyncio.shield(self._writing)  # a stopped read leaves the write running
            self._writing = None

    async def _flush(self) -> None:
        await self._settle()  # one batch in flight at a time keeps the order
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self.received += self._batch_bytes
        self._batch_bytes = 0
        self._writing = asyncio.ensure_future(anyio.to_thread.run_sync(self.write.append, batch))
        if time.monotonic() - self._extended > LOCK_EXTEND_EVERY:
            await self.lock.extend()
            self._extended = time.monotonic()


async def _save(svc: Services, detached: Upload, offset: int) -> bool:
    """Record the new offset; at the last byte, complete the clip (which queues its ingest)."""
    async with svc.transaction() as session:
        upload = await session.merge(detached)
        clip = await session.get(Clip, upload.clip_id)
        assert clip is not None
        finished = await uploads.received(session, svc.upload_sink, upload, clip, svc.settings,
                                          offset)
    detached.expires_at = upload.expires_at
    return finished


async def _discard(svc: Services, upload: Upload, clip: Clip, action: str) -> None:
    async with svc.transaction() as session:
        fresh_upload = await session.merge(upload)
        fresh_clip = await session.merge(clip)
        await uploads.discard(session, svc.upload_sink, fresh_upload, fresh_clip, action)


@tus_errors
async def terminate(request: Request) -> Response:
    """
    summary: Abandon an unfinished upload; nothing of it is kept (tus termination).
    tags: [uploads]
    parameters:
      - {name: upload_id, in: path, required: true, schema: {type: string}}
    responses:
      204: {description: Removed}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      412: {$ref: '#/components/responses/Error'}
      423: {$ref: '#/components/responses/Error'}
    """
    tus.check_version(request)
    svc = services(request)
    upload, clip = await _load(request, svc)
    async with upload_lock(svc.redis, upload.id, svc.heartbeat.instance):
        upload, clip = await _load(request, svc)  # as the lock's last holder left it
        if upload.completed_at is not None:
            raise Conflict("This story is already uploaded.", code="upload_complete",
                           hint="Withdraw the story instead.")
        await _discard(svc, upload, clip, "upload.terminated")
    return Response(status_code=204, headers=tus.base_headers())


routes = [
    Route("/api/uploads", options, methods=["OPTIONS"], include_in_schema=False),
    Route("/api/uploads", create, methods=["POST"]),
    Route("/api/uploads/{upload_id}", head, methods=["HEAD"], include_in_schema=False),
    Route("/api/uploads/{upload_id}", patch, methods=["PATCH"]),
    Route("/api/uploads/{upload_id}", terminate, methods=["DELETE"]),
    Route("/api/uploads/{upload_id}", options, methods=["OPTIONS"], include_in_schema=False),
]
