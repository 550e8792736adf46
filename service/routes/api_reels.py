"""API: reels (compose, render, publish, unpublish, download) and moderators' assets."""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from service import i18n, jobs
from service.db.models import Asset, Reel
from service.domain import assets, reels
from service.domain.reel_state import ReelState
from service.domain.roles import Permission
from service.errors import NotFound
from service.routes.links import links
from service.storage.keys import asset_source, reel_file
from service.web import Services, json_body, member_access, page_of, services


async def reel_view(svc: Services, reel: Reel) -> dict[str, object]:
    base = svc.settings.public_url.rstrip("/")
    view: dict[str, object] = {
        "id": reel.id, "slug": reel.slug, "title": reel.title, "state": reel.state,
        "canvas": reel.canvas, "composition": reel.composition, "version": reel.version,
        "rendered_version": reel.rendered_version, "public_version": reel.public_version,
        "reason": i18n.current().text(reel.reason, reel.reason_args) if reel.reason else None,
        "output": reel.output, "manifest": reel.manifest,
        "updated_at": reel.updated_at.isoformat(), "progress": None, "preview": None,
        "public_url": None, "embed": None}
    if reel.state == ReelState.rendering:
        job = await anyio.to_thread.run_sync(svc.queues.job,
                                             jobs.render_job_id(reel.id, reel.version))
        view["progress"] = float(job.meta.get("progress", 0.0)) if job else 0.0
    if reel.rendered_version is not None:
        signed = links(svc)
        view["preview"] = {
            "video": signed.to(reel_file(reel.id, reel.rendered_version, "reel.mp4")),
            "poster": signed.to(reel_file(reel.id, reel.rendered_version, "poster.jpg"))}
    if reel.public_version is not None:
        url = f"{base}/r/{reel.slug}"
        view["public_url"] = url
        view["embed"] = (f'<iframe src="{escape(url)}/embed" width="360" height="640" '
                         f'style="border:0;max-width:100%" allow="fullscreen" '
                         f'title="{escape(reel.title)}"></iframe>')
    return view


def asset_view(asset: Asset) -> dict[str, object]:
    return {"id": asset.id, "kind": asset.kind, "name": asset.name, "size": asset.size,
            "content_type": asset.content_type, "created_at": asset.created_at.isoformat()}


async def reels_list(request: Request) -> Response:
    """
    summary: The community's reels, newest first (moderators).
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Reels, content: {application/json: {schema: {$ref: '#/components/schemas/Reels'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        rows = await reels.of_community(session, access, page=page)
    rows, next_offset = page.cut(rows)
    return JSONResponse({"reels": [await reel_view(svc, r) for r in rows],
                         "next_offset": next_offset})


async def reels_create(request: Request) -> Response:
    """
    summary: Start a reel (a draft) with a title and a canvas.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewReel'}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        body = await json_body(request)
        reel = await reels.create(session, access, title=body.get("title"),
                                  canvas=body.get("canvas", "9:16"))
    return JSONResponse(await reel_view(svc, reel), status_code=201)


async def reel_detail(request: Request) -> Response:
    """
    summary: One reel, with render progress, preview links and its public address.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The reel, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        reel = await reels.get(session, access, request.path_params["reel_id"])
    return JSONResponse(await reel_view(svc, reel))


async def reel_update(request: Request) -> Response:
    """
    summary: Change a reel's title, canvas, clips (order and trims), transition, title card, captions, music, intro or outro.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/ReelChange'}
    responses:
      200: {description: Changed, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        reel = await reels.get(session, access, request.path_params["reel_id"])
        await reels.update(session, access, reel, await json_body(request))
    return JSONResponse(await reel_view(svc, reel))


async def reel_render(request: Request) -> Response:
    """
    summary: Render the reel as composed now; follow `progress` on the reel.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    responses:
      202: {description: Rendering, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        reel = await reels.get(session, access, request.path_params["reel_id"])
        await reels.request_render(session, reel, actor_id=access.user.id,
                                   deadline_seconds=jobs.REEL_DEADLINE)
    return JSONResponse(await reel_view(svc, reel), status_code=202)


async def _publishing(request: Request, publish: bool) -> Response:
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        reel = await reels.get(session, access, request.path_params["reel_id"])
        await (reels.publish if publish else reels.unpublish)(session, access, reel)
    return JSONResponse(await reel_view(svc, reel))


async def reel_publish(request: Request) -> Response:
    """
    summary: Publish the last render at the reel's public address.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Published, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    return await _publishing(request, True)


async def reel_unpublish(request: Request) -> Response:
    """
    summary: Take the reel off its public address, at once.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Unpublished, content: {application/json: {schema: {$ref: '#/components/schemas/Reel'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    return await _publishing(request, False)


async def reel_download(request: Request) -> Response:
    """
    summary: Download the last render (a short-lived signed link).
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: reel_id, in: path, required: true, schema: {type: string}}
    responses:
      303: {description: To the file}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        reel = await reels.get(session, access, request.path_params["reel_id"])
    if reel.rendered_version is None:
        raise NotFound("This reel has no render to download yet.", code="not_rendered")
    return RedirectResponse(links(svc).to(reel_file(reel.id, reel.rendered_version)),
                            status_code=303)


async def assets_list(request: Request) -> Response:
    """
    summary: Music, intro and outro files of the community (moderators).
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Assets, content: {application/json: {schema: {$ref: '#/components/schemas/Assets'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        rows = await assets.of_community(session, access)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"assets": [asset_view(a) for a in rows],
                         "next_offset": next_offset})


async def assets_upload(request: Request) -> Response:
    """
    summary: Add a music, intro or outro file; the body is the file itself.
    tags: [reels]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: kind, in: query, required: true, schema: {type: string, enum: [music, intro, outro]}}
      - {name: name, in: query, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/octet-stream:
          schema: {type: string, format: binary}
    responses:
      201: {description: Added, content: {application/json: {schema: {$ref: '#/components/schemas/Asset'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      413: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
    kind = assets.check_kind(request.query_params.get("kind"))
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit():
        assets.check_size(kind, int(declared))
    svc.settings.spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=svc.settings.spool_dir, prefix="asset-") as spool:
        size, head = 0, b""
        async for chunk in request.stream():
            size += len(chunk)
            assets.check_size(kind, size)
            if len(head) < assets.HEAD_BYTES:
                head += chunk[:assets.HEAD_BYTES - len(head)]
                if len(head) == assets.HEAD_BYTES:
                    assets.sniff(kind, head)  # refuse a wrong type before taking it all
            await anyio.to_thread.run_sync(spool.write, chunk)
        assets.check_size(kind, size)
        content_type = assets.sniff(kind, head)
        await anyio.to_thread.run_sync(spool.flush)
        asset_id = assets.new_id()
        # write, then commit: no transaction is open while the file goes to storage
        await anyio.to_thread.run_sync(svc.store.put_file, asset_source(asset_id),
                                       Path(spool.name), content_type)
    async with svc.transaction() as session:
        asset = assets.new(session, access, asset_id=asset_id, kind=kind, size=size,
                           content_type=content_type, name=request.query_params.get("name"))
    return JSONResponse(asset_view(asset), status_code=201)


routes = [
    Route("/api/communities/{slug}/reels", reels_list, methods=["GET"]),
    Route("/api/communities/{slug}/reels", reels_create, methods=["POST"]),
    Route("/api/communities/{slug}/reels/{reel_id}", reel_detail, methods=["GET"]),
    Route("/api/communities/{slug}/reels/{reel_id}", reel_update, methods=["PATCH"]),
    Route("/api/communities/{slug}/reels/{reel_id}/render", reel_render, methods=["POST"]),
    Route("/api/communities/{slug}/reels/{reel_id}/publish", reel_publish, methods=["POST"]),
    Route("/api/communities/{slug}/reels/{reel_id}/unpublish", reel_unpublish,
          methods=["POST"]),
    Route("/api/communities/{slug}/reels/{reel_id}/download", reel_download, methods=["GET"]),
    Route("/api/communities/{slug}/assets", assets_list, methods=["GET"]),
    Route("/api/communities/{slug}/assets", assets_upload, methods=["POST"]),
]
