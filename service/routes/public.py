"""The public face of a published reel: its page, an embeddable player, the video (with
Range) and the poster. Everything reads `public_version`, so unpublishing ends access at once."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.db.models import Community, Reel
from service.domain import reels
from service.domain.captions import webvtt
from service.domain.composition import Manifest
from service.middleware import content_security_policy
from service.routes.brand import colour_css_url, logo_url
from service.routes.objects import ranged_response
from service.storage import ObjectNotFound
from service.storage.keys import reel_file
from service.web import services, speech_for

NO_STORE_IN_SHARED_CACHES = {"Cache-Control": "public, no-cache"}  # revalidate every time


async def _reel(request: Request) -> Reel:
    async with services(request).db() as session:
        return await reels.public(session, request.path_params["slug"])


async def _context(request: Request, *, others: int = 0) -> dict[str, object]:
    """The reel, its community's name and brand, and (on the page) `others` of its other
    public reels. Public reel pages speak their community's language, in its time zone."""
    async with services(request).db() as session:
        reel = await reels.public(session, request.path_params["slug"])
        community = await session.get(Community, reel.community_id)
        assert community is not None
        more = await reels.published(session, community.id, limit=others,
                                     excluding=reel.id) if others else []
    speech_for(request, community=community, public=True)
    base = services(request).settings.public_url.rstrip("/")
    page_url = f"{base}/r/{reel.slug}"
    title = reel.public_title or reel.title
    width, height = reel.output.get("width") or 720, reel.output.get("height") or 1280
    return {"reel": reel, "title": title, "page_url": page_url,
            "video_url": f"{page_url}/video.mp4", "captions_url": f"{page_url}/captions.vtt",
            "poster_url": f"{page_url}/poster.jpg", "embed_url": f"{page_url}/embed",
            "width": width, "height": height, "community": community,
            "logo_url": logo_url(community), "brand_css": colour_css_url(community),
            "share_text": f"{title} · {community.name}",
            "whatsapp_url": "https://wa.me/?" + urlencode({"text": f"{title} {page_url}"}),
            "others": more}


async def reel_page(request: Request) -> Response:
    return services(request).templates.TemplateResponse(
        request, "public_reel.html", await _context(request, others=6),
        headers=NO_STORE_IN_SHARED_CACHES)


async def reel_embed(request: Request) -> Response:
    response = services(request).templates.TemplateResponse(
        request, "embed.html", await _context(request), headers=NO_STORE_IN_SHARED_CACHES)
    # the one page meant to be framed by other sites
    response.headers["Content-Security-Policy"] = content_security_policy(
        services(request).settings, frame_ancestors="*")
    return response


async def _file(request: Request, name: str) -> Response:
    reel = await _reel(request)
    assert reel.public_version is not None
    store = services(request).store
    key = reel_file(reel.id, reel.public_version, name)
    try:
        info = await anyio.to_thread.run_sync(store.stat, key)
    except ObjectNotFound:
        return Response(status_code=404)
    return ranged_response(request, store, info, NO_STORE_IN_SHARED_CACHES)


async def reel_video(request: Request) -> Response:
    return await _file(request, "reel.mp4")


async def reel_poster(request: Request) -> Response:
    return await _file(request, "poster.jpg")


async def reel_captions(request: Request) -> Response:
    """The published render's captions (title, names and quotes) as WebVTT."""
    reel = await _reel(request)
    assert reel.public_version is not None
    key = reel_file(reel.id, reel.public_version, "manifest.json")
    store = services(request).store
    try:
        raw = await anyio.to_thread.run_sync(lambda: b"".join(store.get(key)))
    except ObjectNotFound:
        return Response(status_code=404)
    text = webvtt(Manifest.from_json(json.loads(raw)), reel.public_title or reel.title)
    return Response(text, media_type="text/vtt; charset=utf-8",
                    headers=NO_STORE_IN_SHARED_CACHES)


routes = [
    Route("/r/{slug}", reel_page, methods=["GET"]),
    Route("/r/{slug}/captions.vtt", reel_captions, methods=["GET"]),
    Route("/r/{slug}/embed", reel_embed, methods=["GET"]),
    Route("/r/{slug}/video.mp4", reel_video, methods=["GET", "HEAD"]),
    Route("/r/{slug}/poster.jpg", reel_poster, methods=["GET", "HEAD"]),
]
