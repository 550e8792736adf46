"""Kumpul's own scripts and styles (`web/static/`), each under a name that carries its
content's hash (`app.3f2a9c0d1e4b.css`), kept by browsers and proxies for a year; gzipped once
at start-up for clients that take it. Page scripts import each other by their hashed names, so
a script's name changes whenever anything it imports changes. The plain names (`app.css`)
still answer, revalidated on every use.

Templates name files through `static("app.css")`; nothing is read from disk after start-up,
so no request can reach a file outside the folder."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.errors import NotFound

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".txt", ".html", ".map")
TEXT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# `from "./api.js"`, `import "./x.js"`, `import("./x.js")`: a module's relative imports
_IMPORT = re.compile(r"""((?:\bfrom|\bimport)\s*\(?\s*)(["'])\./([\w./-]+?\.js)\2""")
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[^./]+)?$")


@dataclass(frozen=True)
class Asset:
    name: str  # its path under the folder, as templates write it
    hashed: str  # the same with the content hash: "app.3f2a9c0d1e4b.css"
    digest: str
    body: bytes
    gzipped: bytes | None  # when the type compresses and it saves anything
    media_type: str


class StaticAssets:
    """Every file of one folder, hashed and compressed once."""

    def __init__(self, directory: Path) -> None:
        self._sources = {path.relative_to(directory).as_posix(): path.read_bytes()
                         for path in sorted(directory.rglob("*")) if path.is_file()}
        self._by_name: dict[str, Asset] = {}
        for name in self._sources:
            self._build(name, ())
        self._by_hashed = {asset.hashed: asset for asset in self._by_name.values()}
        del self._sources

    def url(self, name: str) -> str:
        """The fingerprinted address of a file; an unknown name is a mistake in a template."""
        return f"/static/{self._by_name[name].hashed}"

    def find(self, path: str) -> tuple[Asset, bool] | None:
        """The asset a path names, and whether the name is its current hashed one."""
        if path in self._by_hashed:
            return self._by_hashed[path], True
        if path in self._by_name:
            return self._by_name[path], False
        # an older release's hashed name (a page cached before a deploy): today's file
        older = _HASHED.match(path)
        if older:
            found = self._by_name.get(older["stem"] + (older["ext"] or ""))
            if found:
                return found, False
        return None

    def _build(self, name: str, chain: tuple[str, ...]) -> Asset:
        if name in self._by_name:
            return self._by_name[name]
        if name in chain:
            raise ValueError(f"scripts import each other in a circle: {' -> '.join(chain)}")
        body = self._sources[name]
        if name.endswith(".js"):
            folder = posixpath.dirname(name)

            def hashed_import(match: re.Match[str]) -> str:
                target = posixpath.normpath(posixpath.join(folder, match[3]))
                if target not in self._sources:
                    return match[0]
                dep = self._build(target, (*chain, name))
                return f"{match[1]}{match[2]}./{posixpath.relpath(dep.hashed, folder or '.')}" \
                       f"{match[2]}"

            body = _IMPORT.sub(hashed_import, body.decode("utf-8")).encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, ext = posixpath.splitext(name)
        suffix = ext.lower()
        squeezed = gzip.compress(body, 9, mtime=0) if suffix in COMPRESSIBLE else None
        asset = Asset(
            name=name, hashed=f"{stem}.{digest}{ext}", digest=digest, body=body,
            gzipped=squeezed if squeezed is not None and len(squeezed) < len(body) else None,
            media_type=TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
            or "application/octet-stream")
        self._by_name[name] = asset
        return asset

    async def serve(self, request: Request) -> Response:
        found = self.find(request.path_params["path"])
        if found is None:
            raise NotFound("There is no such file.", code="file_not_found")
        asset, current = found
        packed = asset.gzipped is not None and takes_gzip(
            request.headers.get("accept-encoding", ""))
        etag = f'"{asset.digest}{"-gzip" if packed else ""}"'
        headers = {"Cache-Control": IMMUTABLE if current else REVALIDATE, "ETag": etag}
        if asset.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
        if packed:
            headers["Content-Encoding"] = "gzip"
        sent = {tag.strip().removeprefix("W/")
                for tag in request.headers.get("if-none-match", "").split(",")}
        if etag in sent or "*" in sent:
            return Response(status_code=304, headers=headers)
        body = asset.gzipped if packed and asset.gzipped is not None else asset.body
        return Response(body, media_type=asset.media_type, headers=headers)


def takes_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` allows gzip (`gzip`, `*`, not `;q=0`)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding:
            allowed[coding.strip()] = quality > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


def routes(assets: StaticAssets) -> list[Route]:
    return [Route("/static/{path:path}", assets.serve, methods=["GET", "HEAD"], name="static",
                  include_in_schema=False)]
