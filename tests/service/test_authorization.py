# ruff: noqa: E501  (one row per route reads best on one line)
"""The authorization matrix: every route of the app x anonymous / member of another community /
member / host / moderator / owner, with the status each must get; and CSRF on every
cookie-authenticated state change.

Bodies are chosen so that a permitted caller fails validation or finds nothing to change
where it can (a 4xx after the check), so the table reads as "who gets past the door".
Permitted callers go last-to-first in power order, the owner last, so destructive calls
that succeed (revoking an invite, closing a prompt) do not change what others see.
A route missing from the table fails the test: new routes need a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from service.app import create_app
from service.settings import Settings
from tests.actors import Actor
from tests.conftest import PASSWORD, ServerProcess, World, make_settings
from tests.uploads.conftest import create, metadata, tus

PERSONAS = ("anonymous", "outsider", "member", "host", "moderator", "owner")


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: str          # six statuses, in PERSONAS order
    body: Any = None
    form: bool = False   # a page form post (no JSON body)
    ids: dict[str, Any] | None = None  # path values for this row ("@name": the cast's name)


# {slug} community A; {other} community B (the outsider's); ids of things in A.
TABLE: list[Row] = [
    # system and public
    Row("GET", "/healthz", "200 200 200 200 200 200"),
    Row("GET", "/readyz", "200 200 200 200 200 200"),
    Row("GET", "/metrics", "403 403 403 403 403 403"),  # operators: token or loopback
    Row("GET", "/api/openapi.json", "200 200 200 200 200 200"),
    Row("POST", "/api/admin/jobs/ping", "401 403 403 403 403 202", {"note": "matrix"}),
    Row("GET", "/api/admin/jobs/{job_id}", "401 403 403 403 403 404"),
    # accounts
    Row("POST", "/api/auth/login", "401 401 401 401 401 401", {"email": "nobody@example.com", "password": "wrong"}),
    Row("GET", "/api/me", "401 200 200 200 200 200"),
    Row("PATCH", "/api/me", "401 422 422 422 422 422", {"language": "xx"}),
    Row("GET", "/api/invites/{token}", "200 200 200 200 200 200"),
    Row("POST", "/api/auth/password-reset", "422 422 422 422 422 422", {"email": "bogus"}),
    Row("POST", "/api/auth/password-reset/{token}", "404 404 404 404 404 404", {"password": "x"}, ids={"token": "nope"}),
    Row("GET", "/api/tokens", "401 200 200 200 200 200"),
    Row("POST", "/api/tokens", "401 422 422 422 422 422", {"name": ""}),
    Row("DELETE", "/api/tokens/{token_id}", "401 404 404 404 404 404"),
    # communities and members
    Row("GET", "/api/communities", "401 200 200 200 200 200"),
    Row("POST", "/api/communities", "401 403 403 403 403 422", {"name": ""}),
    Row("GET", "/api/communities/{slug}", "401 404 200 200 200 200"),
    Row("PATCH", "/api/communities/{slug}", "401 404 403 403 403 422", {"time_zone": "Mars/Base"}),
    Row("GET", "/api/communities/{slug}/members", "401 404 200 200 200 200"),
    Row("PATCH", "/api/communities/{slug}/members/{user_id}", "401 404 403 403 403 422", {"role": "bogus"}),
    Row("DELETE", "/api/communities/{slug}/members/{user_id}", "401 404 403 403 403 404", ids={"user_id": 999999}),
    Row("POST", "/api/communities/{slug}/members/{user_id}/reset-link", "401 404 403 403 403 404", ids={"user_id": 999999}),
    Row("GET", "/api/communities/{slug}/invites", "401 404 403 403 403 200"),
    Row("POST", "/api/communities/{slug}/invites", "401 404 403 403 403 422", {"role": "bogus"}),
    Row("DELETE", "/api/communities/{slug}/invites/{invite_id}", "401 404 403 403 403 204"),
    Row("POST", "/api/communities/{slug}/release", "401 404 403 403 403 422", {"body": ""}),
    Row("GET", "/api/communities/{slug}/audit", "401 404 403 403 200 200"),
    Row("GET", "/api/communities/{slug}/prompts", "401 404 200 200 200 200"),
    Row("POST", "/api/communities/{slug}/prompts", "401 404 403 422 422 422", {}),
    Row("POST", "/api/communities/{slug}/prompts/{prompt_id}/close", "401 404 403 204 404 404"),
    # stories
    Row("GET", "/api/communities/{slug}/clips/mine", "401 404 200 200 200 200"),
    Row("GET", "/api/communities/{slug}/clips/events", "401 404 200 200 200 200"),
    Row("POST", "/api/communities/{slug}/clips/{clip_id}/withdraw", "401 404 200 404 404 404",
        ids={"clip_id": "@clip3"}),
    Row("OPTIONS", "/api/uploads", "204 204 204 204 204 204"),
    Row("POST", "/api/uploads", "401 404 201 201 201 201"),
    Row("HEAD", "/api/uploads/{upload_id}", "401 404 200 404 404 404"),
    Row("PATCH", "/api/uploads/{upload_id}", "401 404 409 404 404 404"),
    Row("DELETE", "/api/uploads/{upload_id}", "401 404 204 404 404 404", ids={"upload_id": "@upload2"}),
    Row("OPTIONS", "/api/uploads/{upload_id}", "204 204 204 204 204 204"),
    # review and reels
    Row("GET", "/api/communities/{slug}/review", "401 404 403 403 200 200"),
    Row("GET", "/api/communities/{slug}/review/{clip_id}", "401 404 403 403 404 404"),
    Row("PATCH", "/api/communities/{slug}/review/{clip_id}", "401 404 403 403 404 404", {"trim_in": -1}),
    Row("POST", "/api/communities/{slug}/review/{clip_id}/approve", "401 404 403 403 404 404"),
    Row("POST", "/api/communities/{slug}/review/{clip_id}/reject", "401 404 403 403 404 404", {"reason": "bogus"}),
    Row("GET", "/api/communities/{slug}/reels", "401 404 403 403 200 200"),
    Row("POST", "/api/communities/{slug}/reels", "401 404 403 403 422 422", {"title": ""}),
    Row("GET", "/api/communities/{slug}/reels/{reel_id}", "401 404 403 403 200 200"),
    Row("PATCH", "/api/communities/{slug}/reels/{reel_id}", "401 404 403 403 422 422", {"canvas": "bogus"}),
    Row("POST", "/api/communities/{slug}/reels/{reel_id}/render", "401 404 403 403 409 409"),
    Row("POST", "/api/communities/{slug}/reels/{reel_id}/publish", "401 404 403 403 409 409"),
    Row("POST", "/api/communities/{slug}/reels/{reel_id}/unpublish", "401 404 403 403 409 409"),
    Row("GET", "/api/communities/{slug}/reels/{reel_id}/download", "401 404 403 403 404 404"),
    Row("GET", "/api/communities/{slug}/assets", "401 404 403 403 200 200"),
    Row("POST", "/api/communities/{slug}/assets", "401 404 403 403 422 422"),
    # live sessions and highlights
    Row("GET", "/api/communities/{slug}/live", "401 404 200 200 200 200"),
    Row("POST", "/api/communities/{slug}/live", "401 404 403 422 403 422", {"title": ""}),
    Row("GET", "/api/communities/{slug}/live/{session_id}", "401 404 200 200 200 200"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/token", "401 404 403 200 403 403"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/end", "401 404 403 200 403 409", ids={"session_id": "@session2"}),
    Row("POST", "/api/live/{session_id}/whip", "401 404 403 400 403 403"),
    Row("DELETE", "/api/live/{session_id}/whip/{resource}", "401 401 401 401 401 401"),
    Row("POST", "/api/live/{session_id}/whep", "401 404 400 400 400 400"),
    Row("DELETE", "/api/live/{session_id}/whep/{resource}", "401 404 404 404 404 404"),
    Row("GET", "/api/live/{session_id}/whep/{resource}/quality", "401 404 404 404 404 404"),
    Row("POST", "/api/live/{session_id}/whep/{resource}/quality", "401 404 404 404 404 404", {"ceiling": "low"}),
    Row("OPTIONS", "/api/live/{session_id}/whip", "204 204 204 204 204 204"),
    Row("OPTIONS", "/api/live/{session_id}/whep", "204 204 204 204 204 204"),
    Row("OPTIONS", "/api/live/{session_id}/whip/{resource}", "204 204 204 204 204 204"),
    Row("OPTIONS", "/api/live/{session_id}/whep/{resource}", "204 204 204 204 204 204"),
    Row("WS", "/api/live/{session_id}/room", "4401 4404 101 101 101 101"),
    Row("WS", "/api/live/{session_id}/relay", "4401 4401 4401 4401 4401 4401"),  # nodes only
    Row("GET", "/api/communities/{slug}/live/{session_id}/moments", "401 404 403 403 200 200"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/moments/find", "401 404 403 403 409 409"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/moments/{moment_id}/accept", "401 404 403 403 409 409"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/moments/{moment_id}/discard", "401 404 403 403 404 404"),
    Row("POST", "/api/communities/{slug}/live/{session_id}/moments/{moment_id}/restore", "401 404 403 403 404 404"),
    # webhooks and numbers (owners)
    Row("GET", "/api/communities/{slug}/webhooks", "401 404 403 403 403 200"),
    Row("POST", "/api/communities/{slug}/webhooks", "401 404 403 403 403 422", {"url": "", "event_types": []}),
    Row("GET", "/api/communities/{slug}/webhooks/{endpoint_id}", "401 404 403 403 403 200"),
    Row("PATCH", "/api/communities/{slug}/webhooks/{endpoint_id}", "401 404 403 403 403 422", {"event_types": ["bogus"]}),
    Row("DELETE", "/api/communities/{slug}/webhooks/{endpoint_id}", "401 404 403 403 403 404", ids={"endpoint_id": "nope"}),
    Row("POST", "/api/communities/{slug}/webhooks/{endpoint_id}/rotate-secret", "401 404 403 403 403 200"),
    Row("GET", "/api/communities/{slug}/webhooks/{endpoint_id}/deliveries", "401 404 403 403 403 200"),
    Row("POST", "/api/communities/{slug}/webhooks/{endpoint_id}/deliveries/{delivery_id}/send-again", "401 404 403 403 403 404"),
    Row("GET", "/api/communities/{slug}/numbers", "401 404 403 403 403 200"),
    # pages
    Row("GET", "/", "303 303 303 303 303 200"),
    Row("GET", "/login", "200 200 200 200 200 200"),
    Row("POST", "/login", "401 401 401 401 401 401", {"email": "nobody@example.com", "password": "x"}, form=True),
    Row("GET", "/setup/{token}", "404 404 404 404 404 404", ids={"token": "nope"}),
    Row("GET", "/reset", "200 200 200 200 200 200"),
    Row("POST", "/reset", "422 422 422 422 422 422", {"email": "bogus"}, form=True),
    Row("GET", "/reset/{token}", "404 404 404 404 404 404", ids={"token": "nope"}),
    Row("POST", "/reset/{token}", "404 404 404 404 404 404", {"password": "x"}, form=True, ids={"token": "nope"}),
    Row("GET", "/admin/outbox", "303 403 403 403 403 200"),
    Row("POST", "/setup/{token}", "404 404 404 404 404 404", {}, form=True, ids={"token": "nope"}),
    Row("POST", "/communities", "401 403 403 403 403 422", {"name": ""}, form=True),
    Row("GET", "/c/{slug}", "303 404 200 200 200 200"),
    Row("GET", "/c/{slug}/admin", "303 404 403 403 403 200"),
    Row("POST", "/c/{slug}/admin/invites", "401 404 403 403 403 422", {"role": "bogus"}, form=True),
    Row("POST", "/c/{slug}/admin/invites/{invite_id}/revoke", "401 404 403 403 403 303", {}, form=True, ids={"invite_id": "@invite2"}),
    Row("POST", "/c/{slug}/admin/members/{user_id}/role", "401 404 403 403 403 422", {"role": "bogus"}, form=True),
    Row("POST", "/c/{slug}/admin/members/{user_id}/remove", "401 404 403 403 403 404", {}, form=True, ids={"user_id": 999999}),
    Row("POST", "/c/{slug}/admin/members/{user_id}/reset-link", "401 404 403 403 403 404", {}, form=True, ids={"user_id": 999999}),
    Row("POST", "/c/{slug}/admin/release", "401 404 403 403 403 422", {"body": ""}, form=True),
    Row("POST", "/c/{slug}/admin/settings", "401 404 403 403 403 422", {"language": "xx"}, form=True),
    Row("GET", "/c/{slug}/admin/webhooks", "303 404 403 403 403 200"),
    Row("POST", "/c/{slug}/admin/webhooks", "401 404 403 403 403 422", {"url": ""}, form=True),
    Row("POST", "/c/{slug}/admin/webhooks/{endpoint_id}/types", "401 404 403 403 403 422", {"event_types": "bogus"}, form=True),
    Row("POST", "/c/{slug}/admin/webhooks/{endpoint_id}/switch", "401 404 403 403 403 303", {"enabled": "1"}, form=True),
    Row("POST", "/c/{slug}/admin/webhooks/{endpoint_id}/rotate", "401 404 403 403 403 200", {}, form=True),
    Row("POST", "/c/{slug}/admin/webhooks/{endpoint_id}/delete", "401 404 403 403 403 404", {}, form=True, ids={"endpoint_id": "nope"}),
    Row("POST", "/c/{slug}/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/send-again", "401 404 403 403 403 404", {}, form=True),
    Row("GET", "/account", "303 200 200 200 200 200"),
    # notifications and calendar
    Row("GET", "/notifications", "303 200 200 200 200 200"),
    Row("POST", "/notifications/read", "401 303 303 303 303 303", {}, form=True),
    Row("GET", "/api/notifications", "401 200 200 200 200 200"),
    Row("POST", "/api/notifications/read", "401 200 200 200 200 200", {}),
    Row("GET", "/api/notifications/events", "401 200 200 200 200 200"),
    Row("POST", "/account/notifications", "401 303 303 303 303 303", {}, form=True),
    Row("POST", "/account/calendar", "401 303 303 303 303 303", {"action": "stop"}, form=True),
    Row("GET", "/unsubscribe/{token}", "404 404 404 404 404 404", ids={"token": "nope.x"}),
    Row("POST", "/unsubscribe/{token}", "404 404 404 404 404 404", {}, form=True, ids={"token": "nope.x"}),
    Row("GET", "/c/{slug}/live/{session_id}/calendar.ics", "401 404 200 200 200 200"),
    Row("GET", "/calendar/{token}.ics", "404 404 404 404 404 404", ids={"token": "1-1-nope"}),
    Row("POST", "/account", "401 422 422 422 422 422", {"language": "xx"}, form=True),
    Row("GET", "/i18n/{language}.{version}.json", "200 200 200 200 200 200", ids={"language": "id", "version": "0"}),
    Row("GET", "/static/{path:path}", "200 200 200 200 200 200", ids={"path": "app.css"}),
    Row("GET", "/c/{slug}/share", "303 404 200 200 200 200"),
    Row("GET", "/c/{slug}/stories", "303 404 200 200 200 200"),
    Row("POST", "/c/{slug}/prompts", "401 404 403 422 422 422", {}, form=True),
    Row("POST", "/c/{slug}/prompts/{prompt_id}/close", "401 404 403 303 404 404", {}, form=True, ids={"prompt_id": "@prompt2"}),
    Row("GET", "/c/{slug}/review", "303 404 403 403 200 200"),
    Row("GET", "/c/{slug}/reels", "303 404 403 403 200 200"),
    Row("GET", "/c/{slug}/reels/{reel_id}", "303 404 403 403 200 200"),
    Row("POST", "/c/{slug}/live", "401 404 403 422 403 422", {"title": ""}, form=True),
    Row("GET", "/c/{slug}/live/{session_id}", "303 404 200 200 200 200"),
    Row("GET", "/c/{slug}/live/{session_id}/studio", "303 404 403 200 403 403"),
    Row("GET", "/c/{slug}/live/{session_id}/scheduled", "303 404 403 200 403 403"),
    Row("GET", "/c/{slug}/live/{session_id}/highlights", "303 404 403 403 200 200"),
    Row("POST", "/c/{slug}/admin/brand", "401 404 403 403 403 422", {"colour": "bogus"}, form=True),
    Row("GET", "/brand/{slug}/logo-{version}.png", "404 404 404 404 404 404", ids={"version": 1}),
    Row("GET", "/brand/colour/{hex}.css", "200 200 200 200 200 200", ids={"hex": "c2410c"}),
    Row("GET", "/r/{slug}", "404 404 404 404 404 404", ids={"slug": "@reel_slug"}),
    Row("GET", "/r/{slug}/embed", "404 404 404 404 404 404", ids={"slug": "@reel_slug"}),
    Row("GET", "/r/{slug}/video.mp4", "404 404 404 404 404 404", ids={"slug": "@reel_slug"}),
    Row("GET", "/r/{slug}/poster.jpg", "404 404 404 404 404 404", ids={"slug": "@reel_slug"}),
    Row("GET", "/r/{slug}/captions.vtt", "404 404 404 404 404 404", ids={"slug": "@reel_slug"}),
    Row("GET", "/objects/{key:path}", "403 403 403 403 403 403"),
    # near the end: joining changes who is a member (a link for up to 10 people)
    Row("GET", "/invite/{token}", "200 200 200 200 200 200", ids={"token": "@join"}),
    Row("POST", "/invite/{token}", "422 303 303 303 303 303", {}, form=True, ids={"token": "@join"}),
    Row("POST", "/api/invites/{token}/accept", "422 200 200 200 200 200", {}, ids={"token": "@join2"}),
    # last: these end the caller's session (each persona signs in afresh for them)
    Row("POST", "/api/auth/logout", "401 204 204 204 204 204"),
    Row("POST", "/logout", "401 303 303 303 303 303", {}, form=True),
]

STATE_CHANGES = {"POST", "PATCH", "DELETE"}


@dataclass
class Cast:
    ids: dict[str, Any]
    actors: dict[str, Actor]
    server: ServerProcess


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    """Room for the failed sign-ins the table makes on purpose."""
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_LOGIN_ATTEMPTS="1000")


@pytest.fixture
def cast(world: World, server_process: ServerProcess) -> Cast:
    owner = world.admin("Olu Owner")
    slug = world.community(owner, "Alpha")
    member = world.join(owner, slug, "member", "Mia Member")
    host = world.join(owner, slug, "host", "Hana Host")
    moderator = world.join(owner, slug, "moderator", "Mo Moderator")
    other_owner = world.admin("Other Owner")
    other = world.community(other_owner, "Beta")
    outsider = world.join(other_owner, other, "member", "Otto Outsider")
    uploads, clips = [], []
    for _ in range(3):  # HEAD and PATCH; DELETE; the withdrawal
        made = create(member, slug, 1000)
        assert made.status_code == 201, made.text
        uploads.append(made.headers["location"].rsplit("/", 1)[1])
        clips.append(member.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["id"])
    reel = moderator.post(f"/api/communities/{slug}/reels", json={"title": "Reel"}).json()
    sessions = [host.post(f"/api/communities/{slug}/live", json={"title": f"Tasting {n}"})
                .json()["id"] for n in range(2)]
    prompts = [host.post(f"/api/communities/{slug}/prompts",
                         json={"question": f"What did you cook {n}?"}).json()["id"]
               for n in range(2)]
    invites = [owner.post(f"/api/communities/{slug}/invites",
                          json={"role": "member", "max_uses": uses}).json()
               for uses in (1, 1, 10, 10)]
    token = [i["url"].rsplit("/", 1)[1] for i in invites]
    endpoint = owner.post(f"/api/communities/{slug}/webhooks", json={
        "url": "https://93.184.215.14/hook", "event_types": ["live.ended"]}).json()
    ids = {"slug": slug, "job_id": "nope", "token": token[0], "join": token[2],
           "join2": token[3], "token_id": 999999, "user_id": member.user_id,
           "invite_id": invites[0]["id"], "invite2": invites[1]["id"],
           "prompt_id": prompts[0], "prompt2": prompts[1], "clip_id": clips[0],
           "clip3": clips[2], "reel_id": reel["id"], "reel_slug": reel["slug"],
           "session_id": sessions[0], "session2": sessions[1], "moment_id": 999999,
           "resource": "nope", "key": f"clips/{clips[0]}/source", "upload_id": uploads[0],
           "upload2": uploads[1], "endpoint_id": endpoint["id"], "delivery_id": 999999}
    return Cast(ids, {"anonymous": Actor(world.client), "outsider": outsider,
                      "member": member, "host": host, "moderator": moderator,
                      "owner": owner}, server_process)


def url(row: Row, ids: dict[str, Any]) -> str:
    values = dict(ids)
    for name, value in (row.ids or {}).items():
        values[name] = ids[value[1:]] if isinstance(value, str) and value.startswith("@") \
            else value
    return row.path.replace("{key:path}", "{key}").replace("{path:path}", "{path}").format(
        **values)


def fresh(actor: Actor) -> Actor:
    """The same person signed in anew (for the rows that end a session)."""
    if actor.email is None:
        return actor
    return Actor.login(actor.client, actor.email, PASSWORD)


def call(cast: Cast, persona: str, row: Row, *, csrf: bool = True) -> int:
    actor = cast.actors[persona]
    target = url(row, cast.ids)
    if row.method == "WS":
        return room(cast, actor, target)
    if target.endswith("/events"):
        return events(cast, actor, target)
    if "logout" in row.path:
        actor = fresh(actor)
    kwargs: dict[str, Any] = {"follow_redirects": False, "csrf": csrf}
    headers: dict[str, str] = {}
    if target.startswith("/api/uploads"):
        headers.update(tus())
        if row.method == "PATCH":
            headers.update({"Upload-Offset": "5",
                            "Content-Type": "application/offset+octet-stream"})
            kwargs["content"] = b"x"
        if row.method == "POST":
            headers["Upload-Length"] = "10"
            headers["Upload-Metadata"] = metadata(community=cast.ids["slug"], release=1,
                                                  filename="story.mp4")
    elif "/whip" in target or "/whep" in target:
        headers["Content-Type"] = "application/sdp"
        kwargs["content"] = b"v=0"
    if row.form:
        kwargs["data"] = row.body or {}
    elif row.body is not None:
        kwargs["json"] = row.body
    return actor.request(row.method, target, headers=headers, **kwargs).status_code


def room(cast: Cast, actor: Actor, target: str) -> int:
    """The room channel: 101 when it stays open, else the close code it ends with."""
    headers = {"origin": "http://testserver"}
    if actor.cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in actor.cookies.items())
    try:
        with actor.client.websocket_connect(target, headers=headers) as socket:
            first = socket.receive()
            if first.get("type") == "websocket.close":
                return int(first.get("code", 1000))
            return 101
    except WebSocketDisconnect as closed:
        return int(closed.code)


def events(cast: Cast, actor: Actor, target: str) -> int:
    """Server-sent events never end: ask the real server, read the status, hang up."""
    cookies = dict(actor.cookies)
    with httpx.Client(base_url=cast.server.url, cookies=cookies, timeout=10) as client, \
            client.stream("GET", target) as response:
        return response.status_code


def test_every_route_has_a_row(settings: Settings) -> None:
    routes = set()
    for route in create_app(settings).routes:
        if isinstance(route, Route):
            methods = route.methods or set()
            for method in methods if methods == {"HEAD"} else methods - {"HEAD"}:
                routes.add((method, route.path))
        elif isinstance(route, WebSocketRoute):
            routes.add(("WS", route.path))
        else:
            assert isinstance(route, Mount)
    rows = {(r.method, r.path) for r in TABLE}
    assert sorted(routes - rows) == [], "every route needs a row in the matrix"
    assert sorted(rows - routes) == [], "a row names a route that does not exist"


def test_matrix(cast: Cast) -> None:
    wrong = []
    for row in TABLE:
        statuses = " ".join(str(call(cast, p, row)) for p in PERSONAS)
        if statuses != row.expect:
            wrong.append(f"{row.method} {row.path}: expected {row.expect}, got {statuses}")
    assert wrong == [], "\n".join(wrong)


# State changes that answer before anyone is signed in, or that take only a publish token
# (never the cookie): there is no cookie authority to protect
NO_COOKIE = {("POST", "/api/auth/login"), ("POST", "/login"), ("POST", "/setup/{token}"),
             ("POST", "/api/auth/password-reset"), ("POST", "/api/auth/password-reset/{token}"),
             ("POST", "/reset"), ("POST", "/reset/{token}"),
             ("DELETE", "/api/live/{session_id}/whip/{resource}"),
             ("POST", "/unsubscribe/{token}")}  # the signed link is the key (RFC 8058)


def test_cookie_state_changes_need_the_csrf_token(cast: Cast) -> None:
    """Every state change a signed-in browser can make is refused without its CSRF token
    (403), whatever the role; with the token the matrix above holds."""
    wrong = []
    for row in TABLE:
        if row.method not in STATE_CHANGES or (row.method, row.path) in NO_COOKIE:
            continue
        for persona in ("member", "owner"):
            status = call(cast, persona, row, csrf=False)
            if status != 403:
                wrong.append(f"{row.method} {row.path} as {persona}: {status}")
    assert wrong == [], "\n".join(wrong)


SIGN_IN_FORMS = [row for row in TABLE if row.form and row.path in
                 ("/login", "/setup/{token}", "/invite/{token}", "/reset", "/reset/{token}")]


def test_sign_in_forms_refuse_cross_site_posts(cast: Cast) -> None:
    """Login CSRF: the forms that sign a browser in refuse a post from another site (as the
    browser says in Sec-Fetch-Site, or Origin when that is all it sends), whoever sends it;
    the same posts from Kumpul's own pages get what the matrix says."""
    assert len(SIGN_IN_FORMS) == 5
    wrong = []
    for row in SIGN_IN_FORMS:
        target = url(row, cast.ids)
        for persona in PERSONAS:
            actor = cast.actors[persona]
            for headers in ({"Sec-Fetch-Site": "cross-site"},
                            {"Origin": "https://evil.example"},
                            {"Sec-Fetch-Site": "same-site", "Origin": "https://a.testserver"}):
                answer = actor.request("POST", target, data=row.body or {}, headers=headers,
                                       follow_redirects=False, csrf=False)
                if answer.status_code != 403 or "cross_site" not in answer.text:
                    wrong.append(f"{row.path} as {persona} with {headers}: "
                                 f"{answer.status_code}")
        own = cast.actors["anonymous"].request(
            "POST", target, data=row.body or {}, follow_redirects=False,
            headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"})
        if str(own.status_code) != row.expect.split()[0]:
            wrong.append(f"{row.path} from our own page: {own.status_code}")
    assert wrong == [], "\n".join(wrong)


SESSION_ROUTES = [row for row in TABLE if row.path.startswith("/api/live/{session_id}")]


def test_another_communitys_session_looks_unknown(cast: Cast) -> None:
    """For someone outside the community, every live route of one of its sessions answers
    exactly as for a session id that does not exist: same status, same body, same headers
    (bar the request id and date), with and without a valid SDP offer."""
    assert len(SESSION_ROUTES) >= 5  # WHIP, WHEP, their resources, the room socket, OPTIONS
    outsider = cast.actors["outsider"]
    offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
             "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n"
             "a=rtpmap:96 VP8/90000\r\n")
    unknown = {**cast.ids, "session_id": "0" * 32}
    wrong = []
    for row in SESSION_ROUTES:
        if row.method == "WS":
            seen = [room(cast, outsider, url(row, ids)) for ids in (cast.ids, unknown)]
            if seen[0] != seen[1]:
                wrong.append(f"WS {row.path}: {seen}")
            continue
        for body in (b"v=0", offer.encode()):
            answers = [outsider.request(row.method, url(row, ids), content=body,
                                        headers={"Content-Type": "application/sdp"})
                       for ids in (cast.ids, unknown)]
            shapes = [(a.status_code, a.text, sorted(
                (k, v) for k, v in a.headers.items() if k not in ("x-request-id", "date")))
                for a in answers]
            if shapes[0] != shapes[1]:
                wrong.append(f"{row.method} {row.path}: {shapes[0]} != {shapes[1]}")
    assert wrong == [], "\n".join(wrong)
