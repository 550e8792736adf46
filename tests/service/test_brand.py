"""An owner's brand (colour and logo) through the admin form: the logo is re-encoded to a
bounded PNG at a new versioned address, refused when it isn't a picture we take; the colour
comes with a text colour that reads on it."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent, Community
from service.domain.brand import text_on
from service.settings import Settings
from tests import media_files
from tests.actors import Actor
from tests.conftest import World, run_db
from tests.media.test_logo import png_size


def community(settings: Settings, slug: str) -> Community:
    async def work(session: AsyncSession) -> Community:
        found = await session.scalar(select(Community).where(Community.slug == slug))
        assert found is not None
        return found

    return run_db(settings, work)


def save(owner: Actor, slug: str, data: dict[str, str], logo: Path | None = None,
         name: str = "logo.png") -> tuple[int, str]:
    files = {"logo": (name, logo.read_bytes(), "application/octet-stream")} if logo else None
    got = owner.post(f"/c/{slug}/admin/brand", data={"csrf_token": owner.csrf or "", **data},
                     files=files, follow_redirects=False)
    return got.status_code, got.text


def test_an_owner_sets_colour_and_logo(world: World, settings: Settings, tmp_path: Path) -> None:
    """Colour and logo saved; the logo served as our own PNG (512 px at most, immutable
    cache, nosniff); a newer upload gets a new address; removing it stops serving it."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner, "Kopi Kita")
    logo = media_files.picture(tmp_path / "logo.webp", size="1600x800", codec="libwebp")
    status, _ = save(owner, slug, {"colour": "#0E7490"}, logo, "logo.webp")
    assert status == 303
    row = community(settings, slug)
    assert (row.brand_colour, row.logo_version) == ("#0e7490", 1)
    served = owner.get(f"/brand/{slug}/logo-1.png")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert "immutable" in served.headers["cache-control"]
    assert served.headers["x-content-type-options"] == "nosniff"
    picture = tmp_path / "served.png"
    picture.write_bytes(served.content)
    assert png_size(picture) == (512, 256)
    admin = owner.get(f"/c/{slug}/admin").text
    assert f'src="/brand/{slug}/logo-1.png"' in admin and 'value="#0e7490"' in admin

    css = owner.get("/brand/colour/0e7490.css")
    assert css.headers["content-type"].startswith("text/css")
    assert css.text.strip() == ":root { --brand: #0e7490; --brand-fg: #ffffff; }"
    assert owner.get("/brand/colour/0E749Z.css").status_code == 404

    jpeg = media_files.picture(tmp_path / "second.jpg", size="300x300", codec="mjpeg")
    assert save(owner, slug, {"colour": "#0e7490"}, jpeg, "second.jpg")[0] == 303
    assert community(settings, slug).logo_version == 2
    assert owner.get(f"/brand/{slug}/logo-1.png").status_code == 404  # only the current one
    assert owner.get(f"/brand/{slug}/logo-2.png").status_code == 200

    assert save(owner, slug, {"remove_logo": "1", "default_colour": "1"})[0] == 303
    row = community(settings, slug)
    assert row.brand_colour is None and row.logo_version == -2
    assert owner.get(f"/brand/{slug}/logo-2.png").status_code == 404
    assert save(owner, slug, {}, logo, "again.webp")[0] == 303
    assert community(settings, slug).logo_version == 3  # a fresh address, never a cached one

    async def audited(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(["community.brand_colour", "community.logo",
                                   "community.logo_removed"])).order_by(AuditEvent.id)))

    assert run_db(settings, audited) == [
        "community.brand_colour", "community.logo", "community.logo",
        "community.brand_colour", "community.logo_removed", "community.logo"]


def test_what_is_not_a_picture_we_take_is_refused(world: World, settings: Settings,
                                                  tmp_path: Path) -> None:
    """An SVG (even named .png), a bad colour: the admin page again with the reason, nothing
    stored."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner, "Kopi Kita")
    svg = tmp_path / "logo.png"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    status, page = save(owner, slug, {"colour": "#112233"}, svg)
    assert status == 415 and "This isn&#39;t a picture we take." in page
    assert "PNG, JPEG or WebP" in page
    status, page = save(owner, slug, {"colour": "red"})
    assert status == 422 and re.search(r"brand colour must look like", page)
    row = community(settings, slug)
    assert (row.brand_colour, row.logo_version) == (None, 0)


def test_brand_text_reads_on_the_colour() -> None:
    """Dark text on light colours, light text on dark ones."""
    assert text_on("#ffffff") == "#000000" and text_on("#fde047") == "#000000"
    assert text_on("#000000") == "#ffffff" and text_on("#1e3a8a") == "#ffffff"
