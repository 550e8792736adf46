"""People using a real server over HTTP (for real clients: tuspy, browsers)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2 as httpx
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import User
from service.domain import accounts
from tests.conftest import PASSWORD, ServerProcess, run_db


@dataclass
class RemoteMember:
    slug: str
    token: str          # personal API token (Bearer)
    owner_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def member_of_new_community(server: ServerProcess, role: str = "member") -> RemoteMember:
    async def admin(session: AsyncSession) -> User:
        return await accounts.create_user(session, email="owner@example.com",
                                          display_name="Owner", password=PASSWORD,
                                          is_admin=True)

    run_db(server.settings, admin)
    with httpx.Client(base_url=server.url) as owner:
        login = owner.post("/api/auth/login",
                           json={"email": "owner@example.com", "password": PASSWORD}).json()
        csrf = {"X-CSRF-Token": login["csrf_token"]}
        slug = owner.post("/api/communities", json={"name": "Remote Riders"},
                          headers=csrf).json()["slug"]
        owner_token = owner.post("/api/tokens", json={"name": "t"}, headers=csrf).json()["token"]
        link = owner.post(f"/api/communities/{slug}/invites", json={"role": role},
                          headers=csrf).json()["url"]
    with httpx.Client(base_url=server.url) as person:
        joined = person.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
            "email": "member@example.com", "display_name": "Mo", "password": PASSWORD}).json()
        token = person.post("/api/tokens", json={"name": "phone"},
                            headers={"X-CSRF-Token": joined["csrf_token"]}).json()["token"]
    return RemoteMember(slug, token, owner_token)
