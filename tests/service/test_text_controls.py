"""Names and titles keep no bidi overrides (U+202E and the rest of U+202A-U+202E,
U+2066-U+2069), sent over the wire to a real server: community names, display names, story,
reel and live titles, prompt questions. Right-to-left text itself stays."""

from __future__ import annotations

import httpx2 as httpx

from service.domain.text import one_line
from tests.conftest import ServerProcess
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus

RLO = "\u202e"
TRICK = f"Ana{RLO}gpj.exe\u2066x\u2069"


def test_one_line_drops_only_the_controls() -> None:
    assert one_line(TRICK) == "Anagpj.exex"
    rtl = "\u05e9\u05dc\u05d5\u05dd \u200f\u0639\u0627\u0644\u0645"  # Hebrew, RLM, Arabic
    assert one_line(rtl) == rtl  # right-to-left text and marks stay


def test_no_overrides_reach_names_and_titles(server_process: ServerProcess) -> None:
    who = member_of_new_community(server_process)
    owner = {"Authorization": f"Bearer {who.owner_token}"}
    member = {"Authorization": f"Bearer {who.token}"}
    seen: list[str] = []
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        made = client.post("/api/communities", json={"name": f"Club {TRICK}"}, headers=owner)
        assert made.status_code == 201, made.text
        seen.append(made.json()["name"])
        slug = who.slug
        for path, body in ((f"/api/communities/{slug}/reels", {"title": TRICK}),
                           (f"/api/communities/{slug}/live", {"title": TRICK}),
                           (f"/api/communities/{slug}/prompts", {"question": TRICK + "?"})):
            answer = client.post(path, json=body, headers=owner)
            assert answer.status_code == 201, answer.text
            seen.append(answer.text)
        link = client.post(f"/api/communities/{slug}/invites", json={"role": "member"},
                           headers=owner).json()["url"]
        joined = client.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
            "email": "rlo@example.com", "display_name": TRICK,
            "password": "a long enough password"})
        assert joined.status_code == 201, joined.text
        seen.append(joined.text)
        client.cookies.clear()
        upload = client.post("/api/uploads", headers={**member, **tus(**{
            "Upload-Length": "100", "Upload-Metadata": metadata(
                community=slug, release=1, filename="a.mp4", title=TRICK)})})
        assert upload.status_code == 201, upload.text
        seen.append(client.get(f"/api/communities/{slug}/clips/mine", headers=member).text)
    for text in seen:
        decoded = text.encode().decode("unicode_escape") if "\\u" in text else text
        assert RLO not in decoded and "\u2066" not in decoded, text
        assert "Anagpj.exex" in decoded, text
