"""Every list pages, over the wire against a real server: `limit` rows from `offset`, and
`next_offset` where the next page starts (null on the last); bad values are a 400. My
stories, the page, pages too."""

from __future__ import annotations

import httpx2 as httpx

from tests.conftest import ServerProcess
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus

LISTS = ["/api/communities", "/api/tokens", "/api/communities/{slug}/members",
         "/api/communities/{slug}/invites", "/api/communities/{slug}/prompts",
         "/api/communities/{slug}/clips/mine", "/api/communities/{slug}/review",
         "/api/communities/{slug}/reels", "/api/communities/{slug}/assets",
         "/api/communities/{slug}/live"]


def test_every_list_pages(server_process: ServerProcess) -> None:
    who = member_of_new_community(server_process)
    owner = {"Authorization": f"Bearer {who.owner_token}"}
    member = {"Authorization": f"Bearer {who.token}"}
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        for n in range(3):
            client.post(f"/api/communities/{who.slug}/invites", json={"role": "member"},
                        headers=owner)
            client.post("/api/uploads", headers={**member, **tus(**{
                "Upload-Length": "100", "Upload-Metadata": metadata(
                    community=who.slug, release=1, filename=f"{n}.mp4", title=f"Story {n}")})})
        for path in LISTS:
            url = path.format(slug=who.slug)
            headers = member if "clips/mine" in url else owner
            whole = client.get(url, headers=headers)
            assert whole.status_code == 200, (url, whole.text)
            key = next(k for k in whole.json() if k != "next_offset" and k != "reasons")
            rows = whole.json()[key]
            assert whole.json()["next_offset"] is None, url
            if len(rows) >= 2:
                first = client.get(url, params={"limit": 1}, headers=headers).json()
                assert first[key] == rows[:1] and first["next_offset"] == 1, url
                rest = client.get(url, params={"limit": 1, "offset": len(rows) - 1},
                                  headers=headers).json()
                assert rest[key] == rows[-1:] and rest["next_offset"] is None, url
            for bad in ({"limit": 0}, {"limit": 201}, {"offset": "-1"}, {"limit": "x"}):
                refused = client.get(url, params=bad, headers=headers)
                assert refused.status_code == 400, (url, bad, refused.text)
        mine = client.get(f"/api/communities/{who.slug}/clips/mine", headers=member).json()
        assert [c["title"] for c in mine["clips"]] == ["Story 2", "Story 1", "Story 0"]
