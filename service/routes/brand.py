"""A community's brand: the admin form (colour, logo upload) and what public pages load of
it (the logo Kumpul re-encoded, a two-line stylesheet for the colour)."""

from __future__ import annotations

import re

import anyio.to_thread
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.db.models import Community
from service.domain import brand, communities
from service.domain.roles import Permission
from service.errors import ApiError
from service.routes.objects import ranged_response
from service.routes.pages import admin_page, page
from service.storage import ObjectNotFound
from service.storage.keys import community_logo
from service.web import check_text, require_user, services

FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}  # every key is versioned
_HEX = re.compile(r"[0-9a-f]{6}")


def logo_url(community: Community) -> str | None:
    if community.logo_version <= 0:
        return None
    return f"/brand/{community.slug}/logo-{community.logo_version}.png"


def colour_css_url(community: Community) -> str | None:
    colour = community.brand_colour
    return f"/brand/colour/{colour[1:]}.css" if colour else None


async def logo(request: Request) -> Response:
    """The logo as Kumpul re-encoded it: a PNG, whatever was uploaded."""
    raw = request.path_params["version"]
    version = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 9 else 0
    async with services(request).db() as session:
        community = await session.scalar(
            select(Community).where(Community.slug == request.path_params["slug"]))
    if community is None or version <= 0 or version != community.logo_version:
        return Response(status_code=404)
    store = services(request).store
    try:
        info = await anyio.to_thread.run_sync(store.stat, community_logo(community.id, version))
    except ObjectNotFound:
        return Response(status_code=404)
    return ranged_response(request, store, info, FOREVER)


async def colour_css(request: Request) -> Response:
    """`--brand` and the text colour that reads on it, for the public pages' stylesheet."""
    hex_digits = request.path_params["hex"]
    if not _HEX.fullmatch(hex_digits):
        return Response(status_code=404)
    colour = f"#{hex_digits}"
    body = f":root {{ --brand: {colour}; --brand-fg: {brand.text_on(colour)}; }}\n"
    return Response(body, media_type="text/css", headers=FOREVER)


async def _picture(form: FormData) -> bytes | None:
    """The uploaded picture's bytes (the body limit caps them at about 1 MB), or None when
    no file was picked."""
    picked = form.get("logo")
    if not isinstance(picked, UploadFile) or not (picked.filename or picked.size):
        return None
    return await picked.read(brand.LOGO_MAX_BYTES + 1)


@page
async def save(request: Request) -> Response:
    """The Brand section of the admin page: colour, a new logo, or no logo."""
    svc = services(request)
    form = await request.form(max_files=1, max_fields=10)
    check_text([*form.keys(), *(v for v in form.values() if isinstance(v, str))])
    async with svc.db() as session:
        who = await require_user(request, session, form)
    picture = await _picture(form)
    try:
        async with svc.transaction() as session:
            access = await communities.require(session, who.user, request.path_params["slug"],
                                               Permission.manage_members)
            await brand.set_colour(session, access,
                                   None if form.get("default_colour") else form.get("colour"))
            if picture is not None:
                await brand.set_logo(session, access, svc.store, picture,
                                     scratch=svc.settings.spool_dir,
                                     media_seconds=min(svc.settings.media_timeout_seconds, 30))
            elif form.get("remove_logo"):
                await brand.drop_logo(session, access)
    except ApiError as exc:
        if exc.code == "community_not_found":
            raise
        return await admin_page(request, who, status=exc.status, error=exc)
    finally:
        await form.close()
    return RedirectResponse(f"/c/{request.path_params['slug']}/admin#brand", status_code=303)


routes = [
    Route("/brand/{slug}/logo-{version}.png", logo, methods=["GET", "HEAD"],
          include_in_schema=False),
    Route("/brand/colour/{hex}.css", colour_css, methods=["GET"], include_in_schema=False),
    Route("/c/{slug}/admin/brand", save, methods=["POST"], include_in_schema=False),
]
