"""Scripts and styles over HTTP from a real server: fingerprinted names cached for a year,
gzip for clients that take it (with Vary and ETag), module imports by hashed name, the plain
names still answering; and the hashing itself on a folder of its own."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import httpx2 as httpx

from service.routes.assets import IMMUTABLE, StaticAssets, takes_gzip
from tests.conftest import ServerProcess
from tests.service.test_error_shape import assert_error

WEB_STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
HASHED = r"/static/{}\.([0-9a-f]{{12}})\.{}"


def raw(client: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The answer and its bytes as sent (not decoded)."""
    with client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def test_pages_name_fingerprinted_files_cached_for_a_year(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url) as client:
        page = client.get("/login").text
        css = re.search(HASHED.format("app", "css"), page)
        js = re.search(HASHED.format("app", "js"), page)
        assert css and js, page
        for found in (css, js):
            answer, body = raw(client, found[0], **{"Accept-Encoding": "identity"})
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == IMMUTABLE
            assert "content-encoding" not in answer.headers
            assert answer.headers["vary"] == "Accept-Encoding"
            # the name carries the hash of exactly what is served
            assert hashlib.sha256(body).hexdigest()[:12] == found[1]
        # the script as written, but for the hashed names of what it imports
        assert re.search(rb'"\./i18n\.[0-9a-f]{12}\.js"', body)
        assert re.sub(rb'"\./([\w-]+)\.[0-9a-f]{12}\.js"', rb'"./\1.js"', body) == (
            WEB_STATIC / "app.js").read_bytes()
        answer, _ = raw(client, css[0])
        assert answer.headers["content-type"] == "text/css; charset=utf-8"
        assert raw(client, js[0])[0].headers["content-type"] == "text/javascript; charset=utf-8"


def test_gzip_for_clients_that_take_it(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url) as client:
        url = re.search(HASHED.format("app", "css"), client.get("/login").text)[0]  # type: ignore[index]
        plain, plain_body = raw(client, url, **{"Accept-Encoding": "identity"})
        packed, packed_body = raw(client, url, **{"Accept-Encoding": "br, gzip;q=0.8"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(packed_body) == plain_body
        assert len(packed_body) < len(plain_body) / 2
        assert int(packed.headers["content-length"]) == len(packed_body)
        assert packed.headers["etag"] != plain.headers["etag"]  # one tag per representation
        refused, _ = raw(client, url, **{"Accept-Encoding": "gzip;q=0, deflate"})
        assert "content-encoding" not in refused.headers
        again = client.get(url, headers={"If-None-Match": packed.headers["etag"],
                                         "Accept-Encoding": "gzip"})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["cache-control"] == IMMUTABLE
        head = client.head(url, headers={"Accept-Encoding": "gzip"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == packed.headers["content-length"]


def test_modules_import_each_other_by_hashed_name(server_process: ServerProcess) -> None:
    """review.js imports api.js and i18n.js by their fingerprinted names, which answer too;
    no page script is fetched by a plain name."""
    with httpx.Client(base_url=server_process.url) as client:
        assets = StaticAssets(WEB_STATIC)
        review = client.get(assets.url("review.js"))
        imports = re.findall(r'from "\./([\w.-]+)"', review.text)
        assert sorted(imports) == sorted([assets.url("api.js").removeprefix("/static/"),
                                          assets.url("i18n.js").removeprefix("/static/")])
        for name in imports:
            answer = client.get(f"/static/{name}")
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == IMMUTABLE
            assert not re.search(r'from "\./[\w-]+\.js"', answer.text)


def test_plain_and_older_names_still_answer(server_process: ServerProcess) -> None:
    """`/static/app.css` (bookmarks, older pages) and a previous release's hashed name answer
    today's file, revalidated each time; unknown files and paths out of the folder are 404s
    in the one error shape."""
    with httpx.Client(base_url=server_process.url) as client:
        for url in ("/static/app.css", "/static/app.0123456789ab.css", "/static/tus.js"):
            answer = client.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["cache-control"] == "public, no-cache"
            assert client.get(url, headers={"If-None-Match": answer.headers["etag"]}
                              ).status_code == 304
        assert client.get("/static/app.css").content == (WEB_STATIC / "app.css").read_bytes()
        assert_error(client.get("/static/nothing.js"), 404, "file_not_found")
        assert_error(client.get("/static/"), 404, "file_not_found")
        for url in ("/static/../service/settings.py", "/static/%2e%2e/pyproject.toml",
                    "/static/..%2fpyproject.toml"):
            assert client.get(url).status_code == 404, url


def test_a_script_is_renamed_when_anything_it_imports_changes(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "page.js").write_text('import { a } from "./lib/a.js";\nimport("./b.js");\n')
    (tmp_path / "lib" / "a.js").write_text('import { c } from "./c.js";\nexport const a = c;\n')
    (tmp_path / "lib" / "c.js").write_text("export const c = 1;\n")
    (tmp_path / "b.js").write_text("export {};\n")
    before = StaticAssets(tmp_path)
    page = before.find(before.url("page.js").removeprefix("/static/"))
    assert page is not None
    body = page[0].body.decode()
    assert re.search(r'from "\./lib/a\.[0-9a-f]{12}\.js"', body)
    assert re.search(r'import\("\./b\.[0-9a-f]{12}\.js"\)', body)
    assert re.search(r'from "\./c\.[0-9a-f]{12}\.js"',
                     before.find(before.url("lib/a.js")[8:])[0].body.decode())  # type: ignore[index]
    (tmp_path / "lib" / "c.js").write_text("export const c = 2;\n")
    after = StaticAssets(tmp_path)
    assert after.url("lib/c.js") != before.url("lib/c.js")
    assert after.url("page.js") != before.url("page.js")  # two imports away
    assert after.url("b.js") == before.url("b.js")


def test_accept_encoding() -> None:
    assert takes_gzip("gzip, deflate, br")
    assert takes_gzip("*")
    assert takes_gzip("GZIP;q=0.5")
    assert not takes_gzip("gzip;q=0")
    assert not takes_gzip("identity")
    assert not takes_gzip("*, gzip;q=0")
    assert not takes_gzip("")
