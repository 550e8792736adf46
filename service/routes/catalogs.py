"""The page scripts' messages in each language, as JSON under a content-hashed URL: a phone
fetches each language's catalog once and keeps it for a year."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import i18n
from service.errors import NotFound


async def script_catalog(request: Request) -> Response:
    language, version = request.path_params["language"], request.path_params["version"]
    if not i18n.is_language(language):
        raise NotFound("No catalog for '%(language)s'.", code="catalog_not_found",
                       language=language[:16])
    body, current = i18n.script_catalog_body(language)
    headers = {"Cache-Control": "public, max-age=31536000, immutable" if version == current
               else "no-cache", "ETag": f'"{current}"'}
    return Response(body, media_type="application/json", headers=headers)


routes = [Route("/i18n/{language}.{version}.json", script_catalog, methods=["GET"],
                include_in_schema=False)]
