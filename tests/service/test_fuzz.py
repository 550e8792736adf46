"""API fuzzing: schemathesis generates requests from `/api/openapi.json` for every operation
and sends them to a real server process on PostgreSQL (whose column limits are strict), as
each persona in turn. No answer may be a server error, and every answer must match the
schema: a documented status, content type, headers and body.

Path ids are real ones from a prepared community, so the fuzzed bodies and queries reach
the handlers behind the role checks. Signing out and deleting tokens are left out (they
would end the persona's own access mid-run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import migrate
from service.db.models import User
from service.domain import accounts
from tests.conftest import (
    PASSWORD,
    PG_ADMIN,
    ServerProcess,
    make_settings,
    redis_started,
    run_db,
)
from tests.uploads.conftest import metadata, tus

pytestmark = pytest.mark.slow  # fuzzes every operation as six personas

PERSONAS = ("anonymous", "outsider", "member", "host", "moderator", "owner")
LEFT_OUT = {("POST", "/api/auth/logout"), ("DELETE", "/api/tokens/{token_id}")}
# headers that frame the HTTP message, the client's to write: a generated one ("content-length:
# 2O_B") is refused by the server's HTTP parser with 400 before any of Kumpul sees it
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "te", "upgrade",
           "expect", "trailer", "keep-alive", "proxy-connection"}
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


@schemathesis.serializer("application/sdp")
def sdp(ctx: Any, value: Any) -> bytes:
    """WHIP and WHEP offers are text: fuzzed strings go as they are."""
    return str(value).encode("utf-8", errors="replace")


@dataclass
class Target:
    server: ServerProcess
    tokens: dict[str, str]
    ids: dict[str, Any]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("fuzz")
    name = f"kumpul_fuzz_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(url.replace("postgresql://", "postgresql+psycopg://"))
    base = make_settings(folder, KUMPUL_DATABASE_URL=url, KUMPUL_LOGIN_ATTEMPTS="1000",
                         KUMPUL_UPLOADS_PER_HOUR="100000",
                         KUMPUL_REDIS_URL=redis_started().rsplit("/", 1)[0] + "/3")
    server = ServerProcess(base, folder / "server.log").start()
    try:
        yield prepare(server)
    finally:
        server.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def prepare(server: ServerProcess) -> Target:
    """Two communities; in the first an owner, a host, a moderator and a member with a
    story upload under way, a reel, a live session, a prompt and a webhook endpoint. Everyone
    gets a token."""
    async def admins(session: AsyncSession) -> list[User]:
        return [await accounts.create_user(session, email=f"{who}@example.com",
                                           display_name=who.title(), password=PASSWORD,
                                           is_admin=True) for who in ("owner", "stranger")]

    run_db(server.settings, admins)
    tokens: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        def token_of(email: str) -> str:
            login = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            made = client.post("/api/tokens", json={"name": "fuzz"},
                               headers={"X-CSRF-Token": login.json()["csrf_token"]})
            client.cookies.clear()
            return str(made.json()["token"])

        def auth(persona: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[persona]}"}

        tokens["owner"], stranger = token_of("owner@example.com"), token_of(
            "stranger@example.com")
        tokens["anonymous"] = ""
        slugs = []
        for who, name in ((tokens["owner"], "Alpha"), (stranger, "Beta")):
            made = client.post("/api/communities", json={"name": name},
                               headers={"Authorization": f"Bearer {who}"})
            slugs.append(made.json()["slug"])
        for persona, slug, inviter in (("member", slugs[0], tokens["owner"]),
                                       ("host", slugs[0], tokens["owner"]),
                                       ("moderator", slugs[0], tokens["owner"]),
                                       ("outsider", slugs[1], stranger)):
            role = "member" if persona == "outsider" else persona
            link = client.post(f"/api/communities/{slug}/invites", json={"role": role},
                               headers={"Authorization": f"Bearer {inviter}"}).json()["url"]
            client.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
                "email": f"{persona}@example.com", "display_name": persona.title(),
                "password": PASSWORD})
            client.cookies.clear()
            tokens[persona] = token_of(f"{persona}@example.com")
        slug = slugs[0]
        reel = client.post(f"/api/communities/{slug}/reels", json={"title": "Fuzz"},
                           headers=auth("moderator")).json()
        session = client.post(f"/api/communities/{slug}/live", json={"title": "Fuzz night"},
                              headers=auth("host")).json()
        prompt = client.post(f"/api/communities/{slug}/prompts",
                             json={"question": "What happened?"}, headers=auth("host")).json()
        invite = client.post(f"/api/communities/{slug}/invites", json={"role": "member"},
                             headers=auth("owner")).json()
        client.post("/api/uploads", headers={**auth("member"), **tus(**{
            "Upload-Length": "1000",
            "Upload-Metadata": metadata(community=slug, release=1, filename="story.mp4")})})
        clip = client.get(f"/api/communities/{slug}/clips/mine", headers=auth("member"))
        members = client.get(f"/api/communities/{slug}/members", headers=auth("owner")).json()
        endpoint = client.post(f"/api/communities/{slug}/webhooks", headers=auth("owner"), json={
            "url": "https://93.184.215.14/hook", "event_types": ["live.ended"]}).json()
    ids = {"slug": slug, "reel_id": reel["id"], "session_id": session["id"],
           "prompt_id": prompt["id"], "invite_id": invite["id"],
           "token": invite["url"].rsplit("/", 1)[1],
           "user_id": next(m["user_id"] for m in members["members"]
                           if m["role"] == "member"),
           "clip_id": (clip.json()["clips"] or [{"id": "none"}])[0]["id"],
           "endpoint_id": endpoint["id"]}
    return Target(server, tokens, ids)


@pytest.fixture(scope="module")
def api(target: Target) -> Any:
    return schemathesis.openapi.from_url(f"{target.server.url}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=8, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_schema(case: Any, target: Target) -> None:
    """Each generated request, sent as every persona."""
    if (case.method.upper(), case.path) in LEFT_OUT:
        return
    for name in case.path_parameters or {}:
        if name in target.ids:
            case.path_parameters[name] = target.ids[name]
    for name in list(case.headers or {}):
        if name.lower() in FRAMING:
            del case.headers[name]
    for persona in PERSONAS:
        token = target.tokens[persona]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        case.call_and_validate(base_url=target.server.url, headers=headers, checks=CHECKS,
                               timeout=30)


def test_the_fuzzer_reaches_every_operation(api: Any) -> None:
    """Sanity: the document lists the operations the fuzzer is meant to cover."""
    operations = {(op.ok().method.upper(), op.ok().path) for op in api.get_all_operations()}
    assert ("POST", "/api/communities/{slug}/reels") in operations
    assert ("POST", "/api/communities/{slug}/live/{session_id}/moments/{moment_id}/accept") \
        in operations
    assert len(operations) > 50


# Inputs the schema cannot describe, so schemathesis never makes them: JSON nested past any
# sane depth, and numbers written with digits that are not ASCII ("²", "٣", "৯").
NESTED = st.builds(
    lambda depth, kinds: "".join(kinds[i % len(kinds)] for i in range(depth)) + "1"
    + "".join({"[": "]", '{"a":': "}"}[kinds[i % len(kinds)]] for i in reversed(range(depth))),
    st.integers(min_value=33, max_value=5000),
    st.lists(st.sampled_from(["[", '{"a":']), min_size=1, max_size=3))
NOT_ASCII_NUMBER = st.text(st.sampled_from("\u00b2\u00b3\u00b9") | st.characters(
    categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1, max_size=4).flatmap(
    lambda odd: st.sampled_from([odd, "1" + odd, odd + "0"]))


def header_bytes(text: str) -> bytes:
    """As a client would send it: Latin-1 where it can be (the server reads headers as
    Latin-1, so "\u00b2" arrives as "\u00b2"), else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def raw(headers: dict[str, str], name: bytes, value: str) -> dict[bytes, bytes]:
    """`headers` as bytes, with `name` set to `value` as a client would send it."""
    return {**{k.encode(): v.encode() for k, v in headers.items()}, name: header_bytes(value)}


def json_operations(api: Any) -> list[tuple[str, str]]:
    found = []
    for op in api.get_all_operations():
        operation = op.ok()
        body = operation.definition.raw.get("requestBody", {})
        if "application/json" in body.get("content", {}) \
                and (operation.method.upper(), operation.path) not in LEFT_OUT:
            found.append((operation.method.upper(), operation.path))
    return found


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=NESTED)
def test_deeply_nested_json_is_a_400_everywhere(body: str, api: Any, target: Target) -> None:
    """Every operation that takes JSON, as every persona, answers deeply nested JSON with a
    4xx in the error shape (a 400 `json_too_deep` once past the door), never a 5xx (without
    the depth check, `[` x 1000 was a 500 RecursionError)."""
    operations = json_operations(api)
    assert ("POST", "/api/auth/login") in operations
    with httpx.Client(base_url=target.server.url, timeout=30) as client:
        for method, path in operations:
            for name, value in {**target.ids, "moment_id": 1}.items():
                path = path.replace("{" + name + "}", str(value))
            for persona in PERSONAS:
                token = target.tokens[persona]
                headers = {"Content-Type": "application/json",
                           **({"Authorization": f"Bearer {token}"} if token else {})}
                answer = client.request(method, path, content=body.encode(), headers=headers)
                assert answer.status_code < 500, (method, path, persona, answer.text)
                if answer.status_code >= 400:  # (joining as a signed-in user reads no body)
                    assert "error" in answer.json(), (method, path, persona)
                if answer.status_code == 400:
                    assert answer.json()["error"]["code"] == "json_too_deep", answer.text


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(number=NOT_ASCII_NUMBER)
def test_tus_numbers_take_ascii_digits_only(number: str, target: Target) -> None:
    """Upload-Length and Upload-Offset written with non-ASCII digits are a 400, never a
    500, for the person who owns the upload (the owner: the fuzzing before may have removed
    the member from the community)."""
    auth = {"Authorization": f"Bearer {target.tokens['owner']}"}
    slug = target.ids["slug"]
    with httpx.Client(base_url=target.server.url, timeout=30) as client:
        # (the fuzzing before may have published a new release text: accept the current one)
        release = client.get(f"/api/communities/{slug}", headers=auth).json()["release"]
        made = client.post("/api/uploads", headers=raw({
            **auth, **tus(**{"Upload-Metadata": metadata(
                community=slug, release=release["version"], filename="x.mp4")})},
            b"Upload-Length", number))
        assert made.status_code == 400, made.text
        assert made.json()["error"]["code"] == "bad_upload_length"
        made = client.post("/api/uploads", headers={**auth, **tus(**{
            "Upload-Length": "100", "Upload-Metadata": metadata(
                community=slug, release=release["version"], filename="x.mp4")})})
        assert made.status_code == 201, made.text
        patched = client.patch(made.headers["location"], content=b"x", headers=raw({
            **auth, **tus(**{"Content-Type": "application/offset+octet-stream"})},
            b"Upload-Offset", number))
        assert patched.status_code == 400, patched.text
        assert patched.json()["error"]["code"] == "bad_upload_offset"
        client.delete(made.headers["location"], headers={**auth, **tus()})
