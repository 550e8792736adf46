"""A person using the API: their own cookies (or Bearer token) over one shared TestClient."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient


class Actor:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.token: str | None = None
        self.csrf: str | None = None
        self.user_id: int | None = None
        self.email: str | None = None

    @classmethod
    def login(cls, client: TestClient, email: str, password: str) -> Actor:
        actor = cls(client)
        response = actor.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        actor.csrf = response.json()["csrf_token"]
        actor.user_id = response.json()["user"]["id"]
        actor.email = email
        return actor

    def request(self, method: str, url: str, *, csrf: bool = True,
                headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        sent = dict(headers or {})
        if self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if csrf and self.csrf and method not in {"GET", "HEAD", "OPTIONS"}:
            sent.setdefault("X-CSRF-Token", self.csrf)
        self.client.cookies.clear()
        for name, value in self.cookies.items():
            self.client.cookies.set(name, value)
        try:
            response = self.client.request(method, url, headers=sent, **kwargs)
            self.cookies = dict(self.client.cookies.items())
        finally:
            self.client.cookies.clear()
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def with_token(self) -> Actor:
        """The same person through a personal API token instead of the cookie."""
        response = self.post("/api/tokens", json={"name": "script"})
        assert response.status_code == 201, response.text
        other = Actor(self.client)
        other.token = response.json()["token"]
        other.user_id = self.user_id
        return other
